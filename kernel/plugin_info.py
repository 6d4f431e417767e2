"""``PluginInfo``: what a plugin says about itself through the ``plugin_info`` hook."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A plugin's self-description.

    - ``description``: one line shown by ``tessera plugins list`` and ``GET /api/plugins``.
    - ``requires``: plugin names or glob patterns; each must match at least one enabled
      plugin, or startup stops naming the missing requirement (``["storage.*"]``: "some
      storage backend").
    - ``config``: the pydantic model of the plugin's config section
      (``[plugins.config."<name>"]``); ``None`` when the plugin takes no config. The
      validated instance is available as ``tessera.plugins.config("<name>")``.
    - ``secret_keys``: config keys shown masked in the admin plugins page.
    """

    description: str = ""
    requires: list[str] = field(default_factory=list)
    config: type[BaseModel] | None = None
    secret_keys: frozenset[str] = frozenset()
