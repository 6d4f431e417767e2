"""How the ``tessera`` command logs: Tessera's own messages at ``log_level``, the
libraries' progress chatter only when asked for.

pgserver (every initdb and pg_ctl line), dramatiq (worker start and stop), alembic (every
migration step) and uvicorn (process started, startup complete) report at ``info`` what a
person at the terminal does not need. Below ``debug`` they show warnings and errors only;
``log_level = "debug"`` (or ``tessera --verbose``) brings all of it back.
"""

from __future__ import annotations

import logging
import warnings

#: Loggers whose ``info`` is chatter, not news.
CHATTY_LIBRARIES = ("pgserver", "dramatiq", "alembic")
LEVELS = ("debug", "info", "warning", "error")


def library_level(level: str) -> str:
    """The level for the chatty libraries (and uvicorn) when Tessera logs at ``level``:
    ``debug`` stays ``debug``; otherwise at least ``warning``."""
    if level == "debug":
        return level
    return max(level, "warning", key=LEVELS.index)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``, the chatty libraries at :func:`library_level`."""
    logging.basicConfig(
        level=level.upper(), format="%(levelname)s %(name)s: %(message)s", force=True
    )
    quiet = library_level(level).upper()
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    if level != "debug":
        # platformdirs (under pgserver) warns on every start of a root shell without a
        # login session; the fallback it takes is fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
