"""Column types PostgreSQL has and SQLAlchemy does not name."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (``pg_current_xact_id()``); orders the outbox."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


# Let reflection (Alembic's autogenerate) recognise the type instead of warning.
ischema_names.setdefault("xid8", Xid8)
