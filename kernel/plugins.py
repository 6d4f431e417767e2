"""Plugin discovery, selection and loading: stevedore entry points into one pluggy manager.

``load_plugins(settings)`` is the only way plugins enter a Tessera process, built-in ones
included. It lists the entry points of the group ``tessera.plugins``, keeps those that
``plugins.enabled`` selects and ``plugins.disabled`` does not (glob patterns allowed),
imports them strictly (any failure stops startup with one line naming the plugin and its
distribution), registers them so that hooks run in config order, validates each plugin's
config section with the plugin's own model, and checks declared requirements. The
resulting :class:`PluginSet` calls every hook through pluggy, one implementing plugin at a
time, so wrappers and ``trace_plugins`` see each call and errors name their plugin.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
import inspect
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError
from stevedore import ExtensionManager, NamedExtensionManager

from kernel import hookspecs
from kernel.config import PluginSettings, Settings, describe_validation_error
from kernel.errors import PluginError
from kernel.plugin_info import PluginInfo
from kernel.tasks import stop_step

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tessera.plugins"


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    """A plugin registered in this process."""

    name: str
    obj: Any
    distribution: str
    version: str
    info: PluginInfo
    config: BaseModel | None


def installed_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Every entry point in ``tessera.plugins``, by name; two with one name is an error."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        previous = found.get(entry_point.name)
        if previous is not None and previous.value != entry_point.value:
            raise PluginError(
                f"plugin {entry_point.name}: provided by both {_dist_name(previous)} and "
                f"{_dist_name(entry_point)}; uninstall one"
            )
        found[entry_point.name] = entry_point
    return found


def select_plugins(available: list[str], selection: PluginSettings) -> list[str]:
    """Plugin names to load, in call order.

    Each ``enabled`` entry is a name or a glob; a glob expands to matching names in sorted
    order, a plain name that is not installed is an error. ``disabled`` patterns remove.
    """
    chosen: list[str] = []
    for pattern in selection.enabled:
        if _is_glob(pattern):
            matches = sorted(fnmatch.filter(available, pattern))
        elif pattern in available:
            matches = [pattern]
        else:
            raise PluginError(
                f"plugins.enabled: no installed plugin named {pattern!r}; "
                f"installed: {', '.join(sorted(available)) or 'none'}"
            )
        chosen.extend(name for name in matches if name not in chosen)
    return [
        name
        for name in chosen
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in selection.disabled)
    ]


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def _dist_name(entry_point: importlib.metadata.EntryPoint) -> str:
    return entry_point.dist.name if entry_point.dist is not None else "an unknown distribution"


class PluginSet:
    """The plugins of one app: the pluggy manager plus what each plugin declared.

    Every hook call goes through pluggy, one implementing plugin at a time (see
    :func:`per_plugin_callers`): the kernel knows which plugin returned what or failed,
    wrappers run around each plugin's call, and ``trace_plugins`` sees every call.
    """

    def __init__(self, pm: pluggy.PluginManager, plugins: list[LoadedPlugin]) -> None:
        self.pm = pm
        self._plugins = {plugin.name: plugin for plugin in plugins}
        self._callers: dict[str, list[tuple[str, pluggy.HookCaller]]] = {}

    def __iter__(self) -> Iterator[LoadedPlugin]:
        return iter(self._plugins.values())

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def get(self, name: str) -> LoadedPlugin:
        return self._plugins[name]

    @property
    def names(self) -> list[str]:
        return list(self._plugins)

    def config(self, name: str) -> Any:
        """The validated config model of plugin ``name`` (``None`` if it takes none)."""
        return self._plugins[name].config

    def hooks_of(self, name: str) -> list[str]:
        """Names of the hooks plugin ``name`` implements (wrappers included)."""
        caller_names = self.pm.get_hookcallers(self._plugins[name].obj) or []
        return sorted(caller.name for caller in caller_names)

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` on every implementing plugin in call order; ``(plugin, result)``.

        Unlike one ``pm.hook.<name>()`` call, this keeps track of which plugin returned
        what, so the kernel can name both plugins of a duplicate registration. A plugin
        whose implementation returns ``None`` yields no pair (pluggy drops ``None``). An
        exception propagates: registration stops startup.
        """
        return [
            (plugin_name, result)
            for plugin_name, caller in self._callers_of(hook)
            for result in caller(**kwargs)
        ]

    async def call_lifecycle(self, hook: str, **kwargs: Any) -> None:
        """Call a start-time lifecycle hook in call order, awaiting awaitables; an error
        stops startup as a :class:`PluginError` naming the plugin."""
        for plugin_name, caller in self._callers_of(hook):
            try:
                await _settle(caller(**kwargs))
            except Exception as error:
                raise PluginError(f"plugin {plugin_name}: {hook} failed: {error}") from error

    async def call_shutdown(self, hook: str, *, within: float, **kwargs: Any) -> None:
        """Call a stop-time lifecycle hook on each plugin in reverse call order, giving each
        plugin's call (and the awaitable it returns) at most ``within`` seconds.

        Never raises for what a plugin did: one that fails, or is still running at its
        deadline (then cancelled), is logged by name and the next plugin is called. Only
        the awaitable is bounded: a plugin that blocks the event loop blocks the process.
        """
        for plugin_name, caller in reversed(self._callers_of(hook)):
            await stop_step(f"plugin {plugin_name}: {hook}", _call(caller, kwargs), within=within)

    async def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a notification hook; each plugin's failure is logged and isolated (a
        wrapper sees it raised from its ``yield`` before the kernel logs it)."""
        for plugin_name, caller in self._callers_of(hook):
            try:
                await _settle(caller(**kwargs))
            except Exception:
                log.exception("plugin %s: %s failed", plugin_name, hook)

    def _callers_of(self, hook: str) -> list[tuple[str, pluggy.HookCaller]]:
        callers = self._callers.get(hook)
        if callers is None:
            callers = self._callers[hook] = per_plugin_callers(self.pm, hook)
        return callers


def per_plugin_callers(pm: pluggy.PluginManager, hook: str) -> list[tuple[str, pluggy.HookCaller]]:
    """One pluggy hook caller per plugin implementing ``hook``, in call order.

    Each is ``pm.subset_hook_caller(hook, <every other implementing plugin>)``: calling it
    runs that plugin's implementation inside every wrapper (``wrapper=True`` or
    ``hookwrapper=True``) of the hook, through pluggy's own call path, so tracing and
    wrappers see it. A plugin that only wraps gets no caller of its own.
    """
    ordered = reversed(getattr(pm.hook, hook).get_hookimpls())  # pluggy calls the last first
    implementers = {impl.plugin: impl.plugin_name for impl in ordered if not _is_wrapper(impl)}
    return [
        (
            name,
            pm.subset_hook_caller(hook, [other for other in implementers if other is not plugin]),
        )
        for plugin, name in implementers.items()
    ]


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return impl.wrapper or impl.hookwrapper


async def _call(caller: pluggy.HookCaller, kwargs: dict[str, Any]) -> None:
    """Call ``caller`` and settle its results, inside the awaitable so that an exception
    raised by the call itself is the awaitable's."""
    await _settle(caller(**kwargs))


async def _settle(results: list[Any]) -> None:
    for result in results:
        if inspect.isawaitable(result):
            await result


def load_plugins(settings: Settings) -> PluginSet:
    """Discover, select, import, register and configure plugins per ``settings.plugins``.

    Raises :class:`PluginError` with a one-line message on: an unknown plugin name in
    ``enabled``; a plugin that fails to import; an invalid config section; a requirement
    that no enabled plugin satisfies.
    """
    entry_points = installed_entry_points()
    names = select_plugins(list(entry_points), settings.plugins)
    for section in settings.plugins.config:
        if section not in entry_points:
            raise PluginError(f"plugins.config: no installed plugin named {section!r}")

    # stevedore memoises a namespace's entry points for the life of the process; every app
    # must see the plugins installed now (a test or a long-lived process may install more).
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
    manager: NamedExtensionManager = NamedExtensionManager(
        ENTRY_POINT_GROUP,
        names=names,
        name_order=True,
        on_load_failure_callback=functools.partial(_raise_load_failure, entry_points),
        on_missing_entrypoints_callback=_raise_missing,
        conflict_resolver=_raise_conflict,
    )

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    # pluggy calls the last registered first: register in reverse so calls follow config order.
    for extension in reversed(manager.extensions):
        try:
            pm.register(extension.plugin, name=extension.name)
        except ValueError as error:
            raise PluginError(f"plugin {extension.name}: cannot register: {error}") from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        name = pm.get_name(error.plugin) or repr(error.plugin)
        hook = str(error).split("'")[1] if "'" in str(error) else str(error)
        raise PluginError(f"plugin {name}: unknown hook {hook!r} (misspelt @hookimpl?)") from None
    _refuse_mixed_wrappers(pm)
    if settings.trace_plugins:
        _trace_hook_calls(pm)

    infos = _plugin_infos(pm)
    loaded = []
    for extension in manager.extensions:
        entry_point = entry_points[extension.name]
        info = infos.get(extension.name, PluginInfo())
        loaded.append(
            LoadedPlugin(
                name=extension.name,
                obj=extension.plugin,
                distribution=_dist_name(entry_point),
                version=entry_point.dist.version if entry_point.dist is not None else "",
                info=info,
                config=_validate_config(extension.name, info, settings.plugins.config),
            )
        )
    _check_requirements(loaded, list(entry_points))
    return PluginSet(pm, loaded)


def _refuse_mixed_wrappers(pm: pluggy.PluginManager) -> None:
    """A plugin may wrap a hook or implement it, not both: the kernel calls each
    implementing plugin without the others, which would leave its wrapper out of every
    other plugin's call."""
    for plugin in pm.get_plugins():
        for caller in pm.get_hookcallers(plugin) or []:
            kinds = {_is_wrapper(impl) for impl in caller.get_hookimpls() if impl.plugin is plugin}
            if len(kinds) > 1:
                raise PluginError(
                    f"plugin {pm.get_name(plugin)}: {caller.name} is both a wrapper and an "
                    "implementation; move the wrapper to a plugin of its own"
                )


def _trace_hook_calls(pm: pluggy.PluginManager) -> None:
    """Log every hook call pluggy makes (``trace_plugins``): which plugin runs, inside
    which wrappers, and what it returned or raised."""

    def before(hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        log.info("hook %s -> %s", hook, _describe(impls))

    def after(
        outcome: pluggy.Result[Any],
        hook: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        if outcome.exception is None:
            log.info("hook %s <- %s: %r", hook, _describe(impls), outcome.get_result())
        else:
            log.info("hook %s <- %s raised %r", hook, _describe(impls), outcome.exception)

    pm.add_hookcall_monitoring(before, after)


def _describe(impls: Sequence[pluggy.HookImpl]) -> str:
    called = ", ".join(impl.plugin_name for impl in impls if not _is_wrapper(impl))
    wrappers = ", ".join(impl.plugin_name for impl in impls if _is_wrapper(impl))
    return f"{called or 'no plugin'} (wrapped by {wrappers})" if wrappers else called


def _plugin_infos(pm: pluggy.PluginManager) -> dict[str, PluginInfo]:
    infos = {}
    for plugin_name, caller in per_plugin_callers(pm, "plugin_info"):
        try:
            returned = caller()
        except Exception as error:
            raise PluginError(f"plugin {plugin_name}: plugin_info failed: {error}") from None
        if len(returned) > 1 or not all(isinstance(info, PluginInfo) for info in returned):
            raise PluginError(f"plugin {plugin_name}: plugin_info must return a PluginInfo")
        infos[plugin_name] = returned[0] if returned else PluginInfo()
    return infos


def _validate_config(
    name: str, info: PluginInfo, sections: dict[str, dict[str, Any]]
) -> BaseModel | None:
    section = sections.get(name)
    if info.config is None:
        if section:
            raise PluginError(f"plugin {name}: takes no config, but plugins.config.{name} is set")
        return None
    try:
        return info.config.model_validate(section or {})
    except ValidationError as error:
        raise PluginError(describe_validation_error(f"plugin {name}: config", error)) from None


def _check_requirements(loaded: list[LoadedPlugin], installed: list[str]) -> None:
    enabled = [plugin.name for plugin in loaded]
    for plugin in loaded:
        for pattern in plugin.info.requires:
            if fnmatch.filter(enabled, pattern):
                continue
            candidates = fnmatch.filter(installed, pattern)
            hint = (
                f"enable one of: {', '.join(sorted(candidates))}"
                if candidates
                else "no installed plugin provides it"
            )
            raise PluginError(
                f"plugin {plugin.name}: requires {pattern!r}, which is not enabled; {hint}"
            )


def _raise_load_failure(
    installed: dict[str, importlib.metadata.EntryPoint],
    manager: Any,
    entry_point: importlib.metadata.EntryPoint,
    error: BaseException,
) -> None:
    # stevedore's cached entry points carry no distribution; ours do.
    distribution = _dist_name(installed.get(entry_point.name, entry_point))
    raise PluginError(
        f"plugin {entry_point.name} (from {distribution}): failed to load "
        f"{entry_point.value}: {type(error).__name__}: {error}"
    ) from None


def _raise_missing(names: set[str]) -> None:
    raise PluginError(f"plugins: entry points not found: {', '.join(sorted(names))}")


def _raise_conflict(namespace: str, name: str, extensions: list[Any]) -> Any:
    raise PluginError(f"plugin {name}: more than one entry point in {namespace} has this name")
