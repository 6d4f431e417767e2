"""``AdminSite``: the admin of one app — the kernel it serves, plugin panels, its keys."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from admin.panels import PluginPanel, collect_panels
from kernel.runtime import Tessera


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one use (CSRF tokens, flash cookies) derived from the deployment secret,
    so a value signed for one purpose is never valid for another."""
    return hmac.new(secret, f"tessera-admin:{purpose}".encode(), hashlib.sha256).digest()


@dataclass
class AdminSite:
    """Built once per app by :func:`admin.app.build_router`; every admin request reaches it
    through :func:`get_site`."""

    tessera: Tessera
    panels: list[PluginPanel]
    csrf_key: bytes
    flash_key: bytes
    _admin_exists: bool = field(default=False, repr=False)

    @classmethod
    def build(cls, tessera: Tessera) -> AdminSite:
        """Collect plugin panels (raises ``PluginError``) and derive the keys."""
        return cls(
            tessera=tessera,
            panels=collect_panels(tessera),
            csrf_key=derive_key(tessera.secret_key, "csrf"),
            flash_key=derive_key(tessera.secret_key, "flash"),
        )

    async def has_admin(self) -> bool:
        """Whether an admin exists; once true it stays true (the last admin is never deleted)."""
        if not self._admin_exists:
            self._admin_exists = await self.tessera.identity.has_admin()
        return self._admin_exists

    def panel(self, slug: str) -> PluginPanel | None:
        return next((item for item in self.panels if item.panel.slug == slug), None)


def get_site(request: Request) -> AdminSite:
    """The site the router's first dependency attached to this request."""
    return request.state.admin


SiteDep = Annotated[AdminSite, Depends(get_site)]
