"""Running an operation's concurrent steps: work before its transaction, outside any
transaction (:class:`kernel.ddl.operation.ConcurrentStep`).

:class:`ConcurrentRun` runs them on a session of its own (a dedicated connection, so
session state survives a transaction-mode pooler) that first takes, for the session, the
same advisory locks the op's transaction takes — the project's shared, each named
collection's exclusive — so no other schema op on those collections runs meanwhile. Each
statement runs under ``lock_timeout``, and stops if the process running it dies
(``client_connection_check_interval``). The session ends (and its locks go) when the steps
are done; the transaction then takes the locks again and checks the steps' work.

If a step fails, the steps that ran — the failed one included, since a failed ``CREATE
INDEX CONCURRENTLY`` leaves an invalid index behind — are undone, last first, and
:class:`ConcurrentStepFailed` is raised. If the transaction fails afterwards, the engine
calls :meth:`ConcurrentRun.undo`. A process killed mid-step leaves what the step left (an
invalid index): the reconciler drops invalid indexes nobody is building
(:func:`kernel.ddl.reconcile.drop_abandoned_indexes`).
"""

from __future__ import annotations

import logging

import asyncpg

from kernel.db.engine import Database
from kernel.db.errors import postgres_error
from kernel.ddl.operation import ConcurrentStep, render, statements
from kernel.ddl.reconcile import op_session
from kernel.errors import Conflict

log = logging.getLogger(__name__)

#: How often (ms) a step's backend checks that the process running it is still there.
CLIENT_CHECK_MS = 1000


class ConcurrentStepFailed(Exception):
    """A concurrent step failed; what it and the steps before it did is undone."""

    def __init__(self, step: ConcurrentStep, error: BaseException) -> None:
        super().__init__(f"{step.description}: {error}")
        self.step = step
        self.error = error


def step_failure(failed: ConcurrentStepFailed) -> Conflict:
    """The 409 for a failed step (already undone): ``table_busy`` when it waited too long
    for other transactions, else ``concurrent_step_failed``; the message names the step."""
    pg = postgres_error(failed.error)
    reason = pg.message if pg is not None else str(failed.error)
    busy = pg is not None and pg.sqlstate == "55P03"
    then = "apply again" + (" when the other transactions on the table finish" if busy else "")
    return Conflict(
        f"{failed.step.description} failed ({reason}); it was undone and nothing changed: {then}",
        code="table_busy" if busy else "concurrent_step_failed",
    )


class ConcurrentRun:
    """The concurrent steps of one op's apply: :meth:`run` them, :meth:`undo` them."""

    def __init__(
        self,
        db: Database,
        project_id: str,
        collections: list[str],
        lock_timeout_ms: int,
        steps: list[ConcurrentStep],
    ) -> None:
        self.db = db
        self.project_id = project_id
        self.collections = sorted(set(collections))
        self.lock_timeout_ms = lock_timeout_ms
        self.steps = steps
        self.started: list[ConcurrentStep] = []

    @property
    def ddl(self) -> list[str]:
        """The SQL of the steps that ran."""
        return [sql for step in self.started for sql in render(step.run)]

    async def run(self) -> None:
        """Run every step in order, holding the op's locks; raises
        :class:`ConcurrentStepFailed` (after undoing) when one fails, and
        :class:`kernel.errors.ServiceUnavailable` (503) when no connection can be opened
        for them."""
        if not self.steps:
            return
        connection = await op_session(self.db, "concurrent steps")
        try:
            await self._lock(connection)
            for step in self.steps:
                self.started.append(step)
                try:
                    for sql in statements(step.run):
                        await connection.execute(sql)
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as error:
                    await self._undo_on(connection)
                    raise ConcurrentStepFailed(step, error) from error
        finally:
            await _close(connection)

    async def undo(self) -> None:
        """Undo the steps that ran, last first; a failure is logged, not raised (the
        reconciler drops an invalid index left behind)."""
        if not self.started:
            return
        try:
            connection = await self.db.dedicated_connection()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.exception("no connection to undo the concurrent steps of a failed schema op")
            return
        try:
            await self._lock(connection)
            await self._undo_on(connection)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            log.exception("could not take the locks to undo a failed schema op's steps")
        finally:
            await _close(connection)

    async def _lock(self, connection: asyncpg.Connection) -> None:
        await connection.execute(f"SET lock_timeout = {int(self.lock_timeout_ms)}")
        if connection.get_server_version() >= (14, 0):
            # A busy backend does not notice its client is gone; a build whose process was
            # killed must stop (leaving an invalid index for the reconciler), not finish.
            await connection.execute(f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")
        await connection.execute(
            "SELECT pg_advisory_lock_shared(hashtext($1))", "tessera:" + self.project_id
        )
        for name in self.collections:
            await connection.execute(
                "SELECT pg_advisory_lock(hashtext($1), hashtext($2))", self.project_id, name
            )

    async def _undo_on(self, connection: asyncpg.Connection) -> None:
        for step in reversed(self.started):
            try:
                for sql in statements(step.undo):
                    await connection.execute(sql)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                log.exception("could not undo %r of a failed schema op", step.description)
        self.started = []


async def _close(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=5)
    except Exception:
        connection.terminate()
