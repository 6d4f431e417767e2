"""Schema ops left ``pending`` or ``running`` by a process that died: found and marked
``failed`` with code ``interrupted``.

How "nobody is applying this op any more" is told, across processes and machines:

* **The applier holds the op's advisory lock, shared, from before its row exists until
  its final status is committed** (:class:`OpLease`). The lease draws the op's id from the
  table's sequence and locks it on a connection of its own, then the engine inserts the
  ``pending`` row with that id: no ``pending`` or ``running`` row is ever visible while
  nobody holds its lock. The lease's connection is a dedicated session (to
  ``session_database_url``): a session lock on a pooled connection would outlive the op
  behind PgBouncer in transaction mode.
* **The apply transaction takes the same lock, shared, for its own length**, so an op
  whose lease connection was cut while its transaction still runs is not touched either;
  and having taken it, it goes on only if the op is still unfinished (a lease cut before
  that, and a reconciler quicker than the transaction: the op stays interrupted, its
  client gets a 409). The engine's status writes before and after it change only
  unfinished ops.
* PostgreSQL releases both locks when their session ends — a process killed, a machine
  gone, a connection cut — and rolls the apply transaction back. ``applied`` is written by
  that transaction itself, so an op still ``pending`` or ``running`` whose lock nobody
  holds changed nothing.

:class:`OpReconciler` runs in every process, at start and every
``schema_ops_reconcile_interval_seconds``. For each ``pending``/``running`` op, in a short
transaction of its own, it tries the lock exclusively (``pg_try_advisory_xact_lock``): not
got, someone is applying the op (or another process is reconciling it) and it is left
alone; got, the op is marked ``failed`` with the :data:`INTERRUPTED` error and a
``failed`` transition — only if it is still ``pending``/``running``, so passes of several
processes mark each op once.

The lock is ``(LOCK_NAMESPACE, op id mod 2^31)`` in PostgreSQL's two-key advisory space.

Each pass also drops the **invalid indexes** of project schemas that no session is
building (:func:`drop_abandoned_indexes`): what a ``CREATE INDEX CONCURRENTLY`` leaves when
its process dies mid-build (an op's concurrent step, :mod:`kernel.ddl.concurrent`). Such an
index enforces nothing but slows every write; PostgreSQL never removes it by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.db.engine import Database
from kernel.db.schema import schema_ops
from kernel.ddl.history import append_transition
from kernel.errors import Conflict, ServiceUnavailable

log = logging.getLogger(__name__)

#: First key of every op lock (any constant shared by every process).
LOCK_NAMESPACE = 0x5C4E0A
#: Statuses of an op that has not finished.
UNFINISHED = ("pending", "running")
#: The ``error`` of an op whose applier went away.
INTERRUPTED = {
    "status": 500,
    "errors": [
        {
            "field": None,
            "code": "interrupted",
            "message": (
                "interrupted: the process applying this change stopped before it finished "
                "(killed, crashed or cut off from the database). PostgreSQL rolled the "
                "change back, so tables and catalog are as they were; apply it again."
            ),
        }
    ],
}


def lock_key(op_id: int) -> int:
    """The op's second advisory-lock key (PostgreSQL's keys are 32-bit)."""
    return op_id % 2**31


async def op_session(db: Database, purpose: str) -> asyncpg.Connection:
    """A dedicated session for a schema op's ``purpose`` (its lock, its concurrent steps);
    :class:`ServiceUnavailable` (503 ``database_busy``) when none can be opened."""
    try:
        return await db.dedicated_connection()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        log.warning("no connection for a schema op's %s: %s", purpose, error)
        raise ServiceUnavailable(
            "the database cannot take a schema change right now; try again",
            code="database_busy",
            headers={"Retry-After": "1"},
        ) from None


@asynccontextmanager
async def op_lease(db: Database) -> AsyncIterator[int]:
    """A new ``schema_ops`` id whose lock is held, shared, until the block ends; the block
    inserts the op's row with that id and writes its final status.

    Raises :class:`ServiceUnavailable` (503) when no connection can be opened for it."""
    connection = await op_session(db, "lock")
    try:
        op_id = await connection.fetchval(
            "SELECT nextval(pg_get_serial_sequence('tessera.schema_ops', 'id'))"
        )
        await connection.execute(
            "SELECT pg_advisory_lock_shared($1, $2)", LOCK_NAMESPACE, lock_key(op_id)
        )
        yield op_id
    finally:
        # Ending the session releases the lock, whatever state the connection is in.
        try:
            await connection.close(timeout=5)
        except Exception:
            connection.terminate()


async def hold_in_transaction(conn: AsyncConnection, op_id: int) -> None:
    """Hold the op's lock, shared, until ``conn``'s transaction ends.

    Raises :class:`Conflict` (409 ``interrupted``) when the op is finished already: its
    lease was lost (its connection cut) and a reconciler marked it interrupted before this
    transaction took the lock — an op marked so is never applied afterwards."""
    await conn.execute(
        sa.select(sa.func.pg_advisory_xact_lock_shared(LOCK_NAMESPACE, lock_key(op_id)))
    )
    status = (
        await conn.execute(sa.select(schema_ops.c.status).where(schema_ops.c.id == op_id))
    ).scalar_one()
    if status not in UNFINISHED:
        raise Conflict(INTERRUPTED["errors"][0]["message"], code="interrupted")


class OpReconciler:
    """Marks ``failed`` (``interrupted``) every unfinished op nobody is applying."""

    def __init__(self, db: Database, interval: float, lock_timeout_ms: int = 5000) -> None:
        self.db = db
        self.interval = interval
        self.lock_timeout_ms = lock_timeout_ms

    async def run(self) -> None:
        """Reconcile every ``interval`` seconds until cancelled; a failed pass is logged."""
        while True:
            await asyncio.sleep(self.interval)
            await self.reconcile_logged()

    async def reconcile_logged(self) -> None:
        """One pass whose failure is logged rather than raised (at start, in the loop)."""
        try:
            await self.reconcile()
        except Exception:
            log.exception("reconciling schema ops failed; trying again in %ss", self.interval)

    async def reconcile(self) -> list[int]:
        """One pass; returns the ids of the ops it marked ``failed``."""
        interrupted = await self._mark_abandoned_ops()
        await drop_abandoned_indexes(self.db, self.lock_timeout_ms)
        return interrupted

    async def _mark_abandoned_ops(self) -> list[int]:
        async with self.db.engine.connect() as conn:
            candidates = (
                (
                    await conn.execute(
                        sa.select(schema_ops.c.id)
                        .where(schema_ops.c.status.in_(UNFINISHED))
                        .order_by(schema_ops.c.id)
                    )
                )
                .scalars()
                .all()
            )
            await conn.rollback()
        interrupted = [op_id for op_id in candidates if await self._mark_if_abandoned(op_id)]
        if interrupted:
            log.warning(
                "schema ops %s were interrupted (their process stopped): marked failed",
                ", ".join(map(str, interrupted)),
            )
        return interrupted

    async def _mark_if_abandoned(self, op_id: int) -> bool:
        now = datetime.now(UTC)
        async with self.db.engine.begin() as conn:
            free = (
                await conn.execute(
                    sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_NAMESPACE, lock_key(op_id)))
                )
            ).scalar_one()
            if not free:
                return False
            marked = await conn.execute(
                schema_ops.update()
                .where(schema_ops.c.id == op_id, schema_ops.c.status.in_(UNFINISHED))
                .values(
                    status="failed",
                    error=INTERRUPTED,
                    transitions=append_transition(schema_ops.c.transitions, "failed", now),
                    finished_at=now,
                )
            )
            return marked.rowcount == 1


#: Invalid indexes in project schemas that no ``CREATE INDEX`` / ``REINDEX`` is building
#: (a concurrent build reports its index in ``pg_stat_progress_create_index`` from the
#: moment the index is visible to other sessions).
_ABANDONED_INDEXES = """
SELECT n.nspname AS schema, c.relname AS name
  FROM pg_index x
  JOIN pg_class c ON c.oid = x.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT x.indisvalid
   AND n.nspname IN (SELECT 'p_' || id FROM tessera.projects)
   AND NOT EXISTS (
       SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = x.indexrelid
   )
 ORDER BY 1, 2
"""


async def drop_abandoned_indexes(db: Database, lock_timeout_ms: int = 5000) -> list[str]:
    """Drop (concurrently, so writes go on) every invalid index of a project schema that
    no session is building; returns their qualified names. A drop that fails (another
    transaction holds the table past ``lock_timeout_ms``) is logged and tried again on the
    next pass."""
    async with db.pool.acquire() as connection:
        rows = await connection.fetch(_ABANDONED_INDEXES)
    if not rows:
        return []
    dropped: list[str] = []
    connection = await db.dedicated_connection()
    try:
        await connection.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        for row in rows:
            qualified = f"{_quoted(row['schema'])}.{_quoted(row['name'])}"
            try:
                await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}")
            except asyncpg.PostgresError as error:
                log.warning("could not drop the invalid index %s: %s", qualified, error)
                continue
            dropped.append(qualified)
    finally:
        await connection.close(timeout=5)
    if dropped:
        log.warning("dropped invalid indexes left by interrupted builds: %s", ", ".join(dropped))
    return dropped


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
