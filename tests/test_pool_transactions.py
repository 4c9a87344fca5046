"""Transactions on the lean pool (voix.db.LeanPool, issue 15), found by an outsider's attack:
piccolo's PostgresTransaction gave its connection back only on the happy path (a BEGIN or
COMMIT cancelled, a COMMIT refused, a ROLLBACK on a lost connection skipped `pool.release()` and
the reset of `current_transaction`). asyncpg's own pool got a lost connection's place back by
itself; the LeanPool relies on voix.db._Transaction giving every connection back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from piccolo.engine.postgres import PostgresEngine

from tests.conftest import DATABASE_KIND
from voix import db, jobs
from voix.db import LeanPool

postgres_only = pytest.mark.skipif(DATABASE_KIND != "postgres", reason="the pool is PostgreSQL's")


# --- LeanPool under piccolo's transactions --------------------------------------------------


@pytest.fixture
async def small() -> AsyncIterator[tuple[db.Postgres, LeanPool]]:
    """An engine of its own (not the app's), on a LeanPool of two connections."""
    engine = db.Postgres(dsn=os.environ["DATABASE_URL"])
    pool = LeanPool(lambda: asyncpg.connect(**engine.config), size=2)
    engine.pool = pool
    yield engine, pool
    await pool.close()


async def _kill(pid: int) -> None:
    other = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        await other.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await other.close()


def _out(pool: LeanPool) -> int:
    """Connections counted as open and not idle: with no caller running, lost ones."""
    return pool.get_size() - len(pool._idle)


async def _statement(engine: db.Postgres) -> Any:
    # Straight to the pool: no outage noted in voix.db.outage by _QueryCounting.
    return await asyncio.wait_for(engine._run_in_pool("SELECT 1"), 3)


async def _lost_in_transaction(engine: PostgresEngine) -> None:
    async with engine.transaction() as transaction:
        await _kill(await transaction.connection.fetchval("SELECT pg_backend_pid()"))
        await asyncio.sleep(0.1)
        await transaction.connection.fetchval("SELECT 1")


@postgres_only
async def test_a_transaction_whose_connection_is_lost_gives_its_place_back(
    small: tuple[db.Postgres, LeanPool],
) -> None:
    """PostgreSQL restarted (or the backend killed, the network cut) while a transaction is
    open: piccolo's __aexit__ rolls back on a closed connection, which raises, and never
    calls release. asyncpg's pool got its place back anyway (Connection._cleanup →
    holder._release_on_close); the LeanPool counts that connection as open for ever, and
    after `size` such transactions every statement of the process waits for ever."""
    engine, pool = small
    for _ in range(pool.get_max_size()):
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
            await asyncio.create_task(_lost_in_transaction(engine))  # a request of its own
    assert _out(pool) == 0, f"{_out(pool)} places lost with their connections"
    assert await _statement(engine)


async def _commit_refused(engine: db.Postgres) -> None:
    async with engine.transaction() as transaction:
        await transaction.connection.execute(
            "CREATE TEMPORARY TABLE attack_deferred"
            " (n int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP;"
            " INSERT INTO attack_deferred VALUES (1), (1)"
        )


@postgres_only
async def test_a_failed_commit_leaves_no_transaction_behind_in_its_task(
    small: tuple[db.Postgres, LeanPool],
) -> None:
    """piccolo resets its current_transaction after release, which a failed commit (or a
    rollback on a lost connection) skips: the rest of the task (a job runner's loop, a
    dispatcher's) sends every statement and "transaction" to that connection, outside the
    pool, for ever (closed: the runner never claims a job again)."""
    engine, _ = small
    with pytest.raises(asyncpg.UniqueViolationError):
        await _commit_refused(engine)
    assert engine.current_transaction.get() is None


@postgres_only
async def test_a_transaction_whose_commit_fails_gives_its_connection_back(
    small: tuple[db.Postgres, LeanPool],
) -> None:
    """A COMMIT refused (a deferred constraint here; in the app, a lost connection or a
    cancellation): piccolo's __aexit__ raises from commit() before release. The LeanPool's own
    docstring expects "an error in a commit" to reach put_back, which would terminate it."""
    engine, pool = small
    for _ in range(pool.get_max_size()):
        with pytest.raises(asyncpg.UniqueViolationError):
            await asyncio.create_task(_commit_refused(engine))  # a request of its own
    assert _out(pool) == 0, f"{_out(pool)} connections never given back"
    assert await _statement(engine)


@postgres_only
@pytest.mark.parametrize("where", ["begin", "commit"])
async def test_a_transaction_cancelled_at_begin_or_commit_gives_its_connection_back(
    small: tuple[db.Postgres, LeanPool], where: str
) -> None:
    """A cancellation (a job's time limit, asyncio.timeout; a server stopping) that lands on
    BEGIN or COMMIT: piccolo neither releases the connection (begin: __aexit__ never runs;
    commit: it raises before release) nor does anything terminate it."""
    engine, pool = small
    for _ in range(pool.get_max_size()):
        assert await _statement(engine)  # an idle connection: acquire() does not suspend
        in_body = asyncio.Event()

        async def transaction(in_body: asyncio.Event) -> None:
            async with engine.transaction():
                in_body.set()  # and straight on to COMMIT, without an await in between

        task = asyncio.create_task(transaction(in_body))  # a request of its own
        if where == "begin":
            await asyncio.sleep(0)  # the task's first step: as far as BEGIN's answer
            assert not in_body.is_set()
        else:
            await in_body.wait()  # the task is now waiting for COMMIT's answer
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _out(pool) == 0, f"{_out(pool)} connections never given back"
    assert await _statement(engine)


@postgres_only
async def test_the_job_runner_claims_again_after_its_claim_lost_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner claims in one long-lived task (Runner._loop). A claim whose connection is
    lost midway (PostgreSQL restarted) leaves piccolo's current_transaction set in that task:
    every later claim, its plain read included, goes to the dead connection, and the process
    never runs a job again (logged once: "cannot reach its table; retrying every poll")."""
    ran = asyncio.Event()

    async def record(_payload: dict[str, object]) -> None:
        ran.set()

    runner = jobs.Runner(handlers={"attack.record": record}, concurrency=1, poll=0.05)
    original = runner._sql
    lost = False

    async def losing_once(template: str, *args: Any) -> list[Any]:
        nonlocal lost
        if not lost and template.startswith("UPDATE job SET status = {}, locked_by"):
            lost = True  # inside the claim's transaction: its connection goes
            (row,) = await original("SELECT pg_backend_pid() AS pid")
            await _kill(row["pid"])
            await asyncio.sleep(0.1)
        return await original(template, *args)

    monkeypatch.setattr(runner, "_sql", losing_once)
    await jobs.enqueue("attack.record", {})
    await runner.start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ran.wait(), 5)
    finally:
        await runner.stop(grace=0.1)
        db.outage.since = None  # the loss noted by voix.db: not this file's other tests'
    assert lost
    assert ran.is_set(), "the runner never claimed again after one claim lost its connection"
