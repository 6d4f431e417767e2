"""The admin's own CSS and JavaScript, read once from ``admin/static``.

Files are served by name only (no paths, so nothing outside the folder is reachable) with
a content hash in their URLs, so browsers may cache them for good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    content: bytes
    media_type: str
    digest: str


def _load() -> dict[str, StaticFile]:
    files = {}
    for path in sorted(FOLDER.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if path.is_file() and media_type is not None:
            content = path.read_bytes()
            files[path.name] = StaticFile(
                content, media_type, hashlib.sha256(content).hexdigest()[:12]
            )
    return files


FILES = _load()


def static_url(name: str) -> str:
    """The URL of a static file, with its content hash; ``KeyError`` for an unknown name."""
    return f"/admin/static/{name}?v={FILES[name].digest}"
