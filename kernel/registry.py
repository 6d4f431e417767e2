"""Registries: the classes plugins contribute through ``register_*`` hooks, by name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from kernel.errors import PluginError
from kernel.plugins import PluginSet

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind (field types, operators ...) by their ``name``.

    Built once at startup; a name registered twice stops startup naming both plugins,
    never a silent override.
    """

    def __init__(self, kind: str, classes: dict[str, type[T]], owners: dict[str, str]) -> None:
        self.kind = kind
        self._classes = classes
        self._owners = owners

    @classmethod
    def from_hook(cls, plugins: PluginSet, hook: str, kind: str, base: type[T]) -> Registry[T]:
        """Collect the classes every plugin returns from ``hook``; each must subclass ``base``."""
        classes: dict[str, type[T]] = {}
        owners: dict[str, str] = {}
        for plugin_name, returned in plugins.call_each(hook):
            for registered in returned or ():
                if not (isinstance(registered, type) and issubclass(registered, base)):
                    raise PluginError(
                        f"plugin {plugin_name}: {hook} returned {registered!r}, "
                        f"not a subclass of {base.__name__}"
                    )
                name = getattr(registered, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(
                        f"plugin {plugin_name}: {kind} {registered.__name__} has no name"
                    )
                if name in classes:
                    raise PluginError(
                        f"{kind} {name!r} is registered by both {owners[name]} and {plugin_name}"
                    )
                classes[name] = registered
                owners[name] = plugin_name
        return cls(kind, classes, owners)

    def __getitem__(self, name: str) -> type[T]:
        return self._classes[name]

    def get(self, name: str) -> type[T] | None:
        return self._classes.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def items(self) -> list[tuple[str, type[T]]]:
        return list(self._classes.items())

    def owner(self, name: str) -> str:
        """The plugin that registered ``name``."""
        return self._owners[name]

    def choose(self, name: str, setting: str) -> type[T]:
        """The class a single-choice setting names; unknown names list what is available."""
        chosen = self._classes.get(name)
        if chosen is None:
            available = ", ".join(f"{n} ({self._owners[n]})" for n in sorted(self._classes))
            raise PluginError(
                f"{setting}: no {self.kind} named {name!r}; available: {available or 'none'}"
            )
        return chosen
