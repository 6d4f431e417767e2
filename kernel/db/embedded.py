"""The embedded PostgreSQL server (from the ``pgserver`` wheel) used when no URL is set.

Start it once, in the process that owns the deployment (``tessera serve``'s parent, before
uvicorn forks workers), hand the workers its URL, and stop it last. Its data lives in
``<data_dir>/postgres`` and persists across restarts.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A handle on the embedded server; several handles on one data dir share one server."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server = None

    def start(self) -> str:
        """Initialise (first time) and start the server; return its connection URL."""
        import pgserver  # a large import, only paid when the embedded server is used

        self.pgdata.mkdir(parents=True, exist_ok=True)
        log.debug("starting embedded PostgreSQL in %s", self.pgdata)  # the CLI says so
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        return self._server.get_uri()

    def stop(self) -> None:
        """Release this handle; the server stops when the last handle is released."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
