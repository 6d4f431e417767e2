"""Pages that plugins add to the admin through the ``register_admin_panels`` hook."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernel import AdminPanel, PluginError
from kernel.runtime import Tessera

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class PluginPanel:
    """A panel with the plugin that registered it."""

    plugin: str
    panel: AdminPanel

    @property
    def url(self) -> str:
        return f"/admin/ext/{self.panel.slug}"


def collect_panels(tessera: Tessera) -> list[PluginPanel]:
    """Every enabled plugin's panels, in menu order (``order``, then title).

    Raises :class:`PluginError` naming the plugin for a result that is not an
    :class:`AdminPanel`, a slug that is not URL-safe, or a slug two plugins both claim.
    """
    found: dict[str, PluginPanel] = {}
    for plugin, panels in tessera.plugins.call_each("register_admin_panels", tessera=tessera):
        for panel in panels or ():
            if not isinstance(panel, AdminPanel):
                raise PluginError(f"plugin {plugin}: register_admin_panels returned {panel!r}")
            if not SLUG.fullmatch(panel.slug):
                raise PluginError(
                    f"plugin {plugin}: admin panel slug {panel.slug!r} must match {SLUG.pattern}"
                )
            previous = found.get(panel.slug)
            if previous is not None:
                raise PluginError(
                    f"admin panel {panel.slug!r} is registered by both {previous.plugin} "
                    f"and {plugin}"
                )
            found[panel.slug] = PluginPanel(plugin, panel)
    return sorted(found.values(), key=lambda item: (item.panel.order, item.panel.title))
