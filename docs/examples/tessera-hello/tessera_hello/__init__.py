"""tessera-hello: the smallest useful Tessera plugin.

It declares its config model, adds an API route and an admin page, and nothing else.
"""

from __future__ import annotations

import html

from fastapi import APIRouter
from pydantic import BaseModel, Field

from kernel import AdminPanel, KernelSurface, PluginInfo, hookimpl

NAME = "hello"


class HelloConfig(BaseModel):
    greeting: str = Field(default="Hello", min_length=1, max_length=50)


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(description="Says hello (an example plugin)", config=HelloConfig)


@hookimpl
def register_routes(tessera: KernelSurface) -> list[APIRouter]:
    config: HelloConfig = tessera.plugins.config(NAME)
    router = APIRouter(prefix="/api/hello", tags=["hello"])

    @router.get("", summary="A greeting from the hello plugin")
    async def hello(name: str = "world") -> dict[str, str]:
        return {"message": f"{config.greeting}, {name}!"}

    return [router]


async def render_panel(request, tessera: KernelSurface) -> str:
    config: HelloConfig = tessera.plugins.config(NAME)
    return f"<p class='lead'>{html.escape(config.greeting)} from a plugin page.</p>"


@hookimpl
def register_admin_panels(tessera: KernelSurface) -> list[AdminPanel]:
    return [AdminPanel(slug="hello", title="Hello", render=render_panel)]
