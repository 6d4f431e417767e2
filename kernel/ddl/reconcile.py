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

And it drops the **valid unique indexes no record rule owns**
(:func:`drop_orphaned_rule_indexes`): an index in a record rule's shape
(:func:`kernel.catalog.names.record_rule_index_name`, on its collection's table) that the
catalog names nowhere — what a concurrent build leaves when its undo fails after the op
was refused. Such an index refuses writes no rule explains. One is dropped only under its
collection's advisory locks (those every op on it holds) while no op of its project is
unfinished, and after checking again there that no rule names it and no unique field
owns that name.

And it drops the **transient indexes and constraints**
(:func:`drop_orphaned_transients`): what an op builds under a transient name before its
transaction (:func:`kernel.catalog.names.transient_name`), for the transaction to rename,
when the process died between the two or the undo failed. Such an object refuses writes
no rule explains. One is dropped only under its collection's advisory locks while no op of
its project is unfinished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.catalog.names import TRANSIENT_PREFIX
from kernel.db.engine import Database
from kernel.db.schema import schema_ops
from kernel.ddl.columns import unique_index_name
from kernel.ddl.history import append_transition
from kernel.errors import Conflict, ServiceUnavailable

log = logging.getLogger(__name__)

#: First key of every op lock (any constant shared by every process).
LOCK_NAMESPACE = 0x5C4E0A
#: Statuses of an op that has not finished.
UNFINISHED = ("pending", "running")


def mark_failed(op_id: int, body: dict[str, Any], now: datetime) -> sa.Update:
    """The statement that marks op ``op_id``, if still unfinished, ``failed`` with the
    error ``body`` at ``now``."""
    return (
        schema_ops.update()
        .where(schema_ops.c.id == op_id, schema_ops.c.status.in_(UNFINISHED))
        .values(
            status="failed",
            error=body,
            transitions=append_transition(schema_ops.c.transitions, "failed", now),
            finished_at=now,
        )
    )


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
        await drop_orphaned_rule_indexes(self.db, self.lock_timeout_ms)
        await drop_orphaned_transients(self.db, self.lock_timeout_ms)
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
            marked = await conn.execute(mark_failed(op_id, INTERRUPTED, now))
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
    dropped = await _drop_each(db, rows, lock_timeout_ms, _drop_invalid)
    if dropped:
        log.warning("dropped invalid indexes left by interrupted builds: %s", ", ".join(dropped))
    return dropped


async def _drop_invalid(connection: asyncpg.Connection, row: asyncpg.Record) -> bool:
    qualified = _qualified(row)
    try:
        await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}")
    except asyncpg.PostgresError as error:
        log.warning("could not drop the invalid index %s: %s", qualified, error)
        return False
    return True


async def _drop_each(
    db: Database,
    rows: list[asyncpg.Record],
    lock_timeout_ms: int,
    drop: Callable[[asyncpg.Connection, asyncpg.Record], Awaitable[bool]],
) -> list[str]:
    """``drop(session, row)`` for each index row (``schema``, ``name``), on one dedicated
    session under ``lock_timeout_ms``; the qualified names of those it dropped."""
    if not rows:
        return []
    dropped: list[str] = []
    connection = await db.dedicated_connection()
    try:
        await connection.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        for row in rows:
            if await drop(connection, row):
                dropped.append(_qualified(row))
    finally:
        await connection.close(timeout=5)
    return dropped


#: Valid unique indexes of project tables named like a record rule's index of the
#: table's own collection (``uq_c<collection id>_...``) that no record rule names.
_ORPHANED_RULE_INDEXES = r"""
SELECT n.nspname AS schema, c.relname AS name, t.relname AS table_name,
       col.project_id, col.id AS collection_id, col.name AS collection
  FROM pg_index x
  JOIN pg_class c ON c.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN tessera.collections col
    ON 'p_' || col.project_id = n.nspname AND col.sql_table_name = t.relname
 WHERE x.indisvalid AND x.indisunique AND NOT x.indisprimary
   AND left(c.relname, length('uq_c' || col.id || '_')) = 'uq_c' || col.id || '_'
   AND NOT EXISTS (
       SELECT 1 FROM tessera.record_rules r
        WHERE r.collection_id = col.id AND r.definition ->> 'index' = c.relname
   )
 ORDER BY 1, 2
"""

#: Still an orphan, checked again under the collection's locks: the index is there and
#: valid, no record rule of the collection names it, no op of the project is unfinished.
_STILL_ORPHANED = """
SELECT EXISTS (
         SELECT 1 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND x.indisvalid)
   AND NOT EXISTS (
         SELECT 1 FROM tessera.record_rules r
          WHERE r.collection_id = $3 AND r.definition ->> 'index' = $2)
   AND NOT EXISTS (
         SELECT 1 FROM tessera.schema_ops o
          WHERE o.project_id = $4 AND o.status IN ('pending', 'running'))
"""


async def drop_orphaned_rule_indexes(db: Database, lock_timeout_ms: int = 5000) -> list[str]:
    """Drop (concurrently) every valid unique index in a record rule's shape that no record
    rule names; returns their qualified names. An index is left alone — for a later pass —
    while an op holds its collection's or project's lock or any op of the project is
    unfinished (it may be building it), and always when it is the index a unique field
    of the collection would have (a collection named ``c<its id>``)."""
    async with db.pool.acquire() as connection:
        rows = await connection.fetch(_ORPHANED_RULE_INDEXES)
        owned = await _unique_field_indexes(connection, {row["collection_id"] for row in rows})
    orphans = [row for row in rows if (row["collection_id"], row["name"]) not in owned]
    dropped = await _drop_each(db, orphans, lock_timeout_ms, _drop_orphan)
    if dropped:
        log.warning("dropped unique indexes no record rule names: %s", ", ".join(dropped))
    return dropped


async def _unique_field_indexes(
    connection: asyncpg.Connection, collection_ids: set[int]
) -> set[tuple[int, str]]:
    """``(collection id, index name)`` of each unique field's index in those collections."""
    if not collection_ids:
        return set()
    fields = await connection.fetch(
        "SELECT c.id, c.sql_table_name, f.sql_column_name FROM tessera.fields f"
        " JOIN tessera.collections c ON c.id = f.collection_id"
        " WHERE f.is_unique AND c.id = ANY($1::bigint[])",
        list(collection_ids),
    )
    return {
        (field["id"], unique_index_name(field["sql_table_name"], [field["sql_column_name"]]))
        for field in fields
    }


async def _drop_orphan(connection: asyncpg.Connection, row: asyncpg.Record) -> bool:
    """Drop one orphan under its collection's locks, if it still is one; False when an op
    holds them, it is no orphan any more, or the drop fails (logged)."""
    still = (row["schema"], row["name"], row["collection_id"], row["project_id"])
    drop = f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(row)}"
    return await _drop_locked(connection, row, (_STILL_ORPHANED, still), drop)


async def _drop_locked(
    connection: asyncpg.Connection,
    row: asyncpg.Record,
    still: tuple[str, tuple[object, ...]],
    drop: str,
) -> bool:
    """Run ``drop`` under the locks of ``row``'s project (shared) and collection, tried
    (never waited for), if the query ``still`` (with its arguments) still answers true
    there; False when an op holds the locks, ``still`` says no, or the drop fails
    (logged). The locks are released before it returns."""
    project, collection = row["project_id"], row["collection"]
    locks = (
        ("pg_try_advisory_lock_shared(hashtext($1))", ("tessera:" + project,)),
        ("pg_try_advisory_lock(hashtext($1), hashtext($2))", (project, collection)),
    )
    try:
        for call, args in locks:
            if not await connection.fetchval(f"SELECT {call}", *args):
                return False
        query, arguments = still
        if not await connection.fetchval(query, *arguments):
            return False
        await connection.execute(drop)
        return True
    except asyncpg.PostgresError as error:
        log.warning("could not drop %s: %s", _qualified(row), error)
        return False
    finally:
        await connection.execute("SELECT pg_advisory_unlock_all()")


#: Indexes and ``CHECK`` constraints of project tables named like a transient object of
#: the table's own collection (``tmp_c<collection id>_...``,
#: :func:`kernel.catalog.names.transient_name`).
_TRANSIENTS = r"""
SELECT n.nspname AS schema, o.name, o.kind, t.relname AS table_name,
       col.project_id, col.id AS collection_id, col.name AS collection
  FROM (SELECT c.relname::text AS name, x.indrelid AS relid, 'index' AS kind
          FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        UNION ALL
        SELECT conname::text, conrelid, 'check' FROM pg_constraint WHERE contype = 'c') o
  JOIN pg_class t ON t.oid = o.relid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN tessera.collections col
    ON 'p_' || col.project_id = n.nspname AND col.sql_table_name = t.relname
 WHERE o.name ~ ('^' || $1 || col.id || '_[0-9a-f]{10}_')
 ORDER BY 1, 2
"""

#: No op of the project is unfinished (so none is building or about to rename one).
_NO_OP_UNFINISHED = """
SELECT NOT EXISTS (
         SELECT 1 FROM tessera.schema_ops o
          WHERE o.project_id = $1 AND o.status IN ('pending', 'running'))
"""


async def drop_orphaned_transients(db: Database, lock_timeout_ms: int = 5000) -> list[str]:
    """Drop every index and ``CHECK`` constraint of a transient name
    (:func:`kernel.catalog.names.transient_name`): what an op builds before its
    transaction, which that transaction renames or drops; one left outside an op is what
    a process killed between the two, or a failed undo, leaves — a constraint or unique
    index refusing writes no rule explains. One is dropped only under its collection's
    advisory locks while no op of its project is unfinished (an index concurrently, a
    constraint by ``ALTER TABLE``, under ``lock_timeout_ms``); returns their qualified
    names."""
    async with db.pool.acquire() as connection:
        rows = await connection.fetch(_TRANSIENTS, TRANSIENT_PREFIX)
    dropped = await _drop_each(db, rows, lock_timeout_ms, _drop_transient)
    if dropped:
        log.warning("dropped transient objects no op is building: %s", ", ".join(dropped))
    return dropped


async def _drop_transient(connection: asyncpg.Connection, row: asyncpg.Record) -> bool:
    if row["kind"] == "index":
        drop = f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(row)}"
    else:
        table = f"{_quoted(row['schema'])}.{_quoted(row['table_name'])}"
        drop = f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_quoted(row['name'])}"
    return await _drop_locked(connection, row, (_NO_OP_UNFINISHED, (row["project_id"],)), drop)


def _qualified(row: asyncpg.Record) -> str:
    """``"schema"."name"`` of an index row."""
    return f"{_quoted(row['schema'])}.{_quoted(row['name'])}"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
