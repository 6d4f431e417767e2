"""Addresses of admin pages, and the check that keeps redirects inside the admin."""

from __future__ import annotations

from urllib.parse import quote, urlencode

DEFAULT = "/admin/projects"


def safe_next(value: str | None, default: str = DEFAULT) -> str:
    """``value`` if it is a path of the admin (so a crafted link cannot send a person to
    another site after a form), else ``default``."""
    if (
        value
        and value.startswith("/admin")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return default


def with_query(path: str, params: list[tuple[str, str]] | dict[str, str]) -> str:
    query = urlencode(params)
    return f"{path}?{query}" if query else path


def project(project_id: str, *rest: str) -> str:
    return "/".join(["/admin/p", quote(project_id, safe=""), *rest])


def collection(project_id: str, name: str, *rest: str) -> str:
    return project(project_id, "c", quote(name, safe=""), *rest)


def field(project_id: str, collection_name: str, name: str) -> str:
    return collection(project_id, collection_name, "f", quote(name, safe=""))
