"""The PostgreSQL connections statements and transactions run on (voix.db.LeanPool): bounded,
first come first served, and a connection comes back into use only clean (issue 15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest
from httpx import AsyncClient

from tests.conftest import DATABASE_KIND
from tests.factories import build_world
from voix import db
from voix.db import LeanPool

pytestmark = pytest.mark.skipif(
    DATABASE_KIND != "postgres", reason="the pool is PostgreSQL's (SQLite has no network)"
)


@pytest.fixture
async def pool(client: AsyncClient) -> AsyncIterator[LeanPool]:
    """A pool of two on the test's database, apart from the app's."""
    config = db.engine().config
    made = LeanPool(lambda: asyncpg.connect(**config), size=2)
    yield made
    await made.close()


async def _backend(pool: LeanPool, seconds: float = 0.0) -> int:
    async with pool.acquire() as connection:
        return int(await connection.fetchval("SELECT pg_backend_pid() FROM pg_sleep($1)", seconds))


async def test_never_more_than_its_size_and_every_caller_served(pool: LeanPool) -> None:
    pids = await asyncio.gather(*(_backend(pool, 0.05) for _ in range(8)))
    assert len(pids) == 8
    assert len(set(pids)) <= 2
    assert pool.get_size() <= 2
    # Reused, not reopened: the next statements run on the same backends.
    assert {await _backend(pool) for _ in range(4)} <= set(pids)


async def test_a_caller_waits_for_a_connection_and_a_cancelled_wait_loses_nobody_a_turn(
    pool: LeanPool,
) -> None:
    held = [await pool.acquire(), await pool.acquire()]
    first = asyncio.create_task(_backend(pool))
    second = asyncio.create_task(_backend(pool))
    await asyncio.sleep(0.1)
    assert not first.done()  # both wait: the pool is at its size
    assert not second.done()
    first.cancel()
    await pool.release(held.pop())
    assert await asyncio.wait_for(second, 2) > 0  # the turn the cancelled wait had went on
    with pytest.raises(asyncio.CancelledError):
        await first
    await pool.release(held.pop())
    assert pool.get_size() <= 2


async def test_a_connection_left_in_a_transaction_is_not_used_again(pool: LeanPool) -> None:
    connection = await pool.acquire()
    await connection.execute("BEGIN")
    await connection.execute("CREATE TEMPORARY TABLE left_behind (n int)")
    await pool.release(connection)
    assert connection.is_closed()
    async with pool.acquire() as other:
        assert other is not connection
        assert not other.is_in_transaction()
        assert await other.fetchval("SELECT to_regclass('pg_temp.left_behind')") is None


async def test_a_statement_cancelled_midway_does_not_give_its_connection_back(
    pool: LeanPool,
) -> None:
    async def long() -> None:
        async with pool.acquire() as connection:
            await connection.fetchval("SELECT pg_sleep(5)")

    task = asyncio.create_task(long())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The connection was mid-statement: terminated, not queued behind its cancellation.
    assert pool.get_size() == 0
    started = asyncio.get_running_loop().time()
    assert await _backend(pool) > 0
    assert asyncio.get_running_loop().time() - started < 2


async def test_a_connection_the_server_closed_is_replaced(pool: LeanPool) -> None:
    doomed = await _backend(pool)
    assert pool.get_size() == 1
    other = await asyncpg.connect(**db.engine().config)
    try:
        assert await other.fetchval("SELECT pg_terminate_backend($1)", doomed)
    finally:
        await other.close()
    await asyncio.sleep(0.2)
    pids = {await _backend(pool) for _ in range(3)}
    assert doomed not in pids


async def test_a_closed_pool_refuses_and_wakes_its_waiters(client: AsyncClient) -> None:
    config = db.engine().config
    small = LeanPool(lambda: asyncpg.connect(**config), size=1)
    held = await small.acquire()
    waiting = asyncio.create_task(_backend(small))
    await asyncio.sleep(0.05)
    await small.close()
    with pytest.raises(asyncpg.InterfaceError):
        await asyncio.wait_for(waiting, 2)
    await small.release(held)  # after closing: closed, not kept
    assert held.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        await small.acquire()


async def test_the_apps_statements_and_transactions_run_on_it(client: AsyncClient) -> None:
    engine = db.engine()
    assert isinstance(engine.pool, LeanPool)
    before = engine.pool.get_size()
    async with engine.transaction():
        await engine.run_querystring(db.QueryString("SELECT 1"))
    assert (await client.get("/")).status_code == 200
    assert 1 <= engine.pool.get_size() <= max(before, 1) + 1
    assert engine.pool.get_size() <= engine.pool.get_max_size()


async def test_a_connection_given_back_twice_is_refused_the_second_time(pool: LeanPool) -> None:
    connection = await pool.acquire()
    await pool.release(connection)
    with pytest.raises(asyncpg.InterfaceError):
        await pool.release(connection)  # else two callers could get it at once
    first, second = await pool.acquire(), await pool.acquire()
    assert first is not second
    await pool.release(first)
    await pool.release(second)


async def test_a_connection_idle_too_long_is_closed_rather_than_used(
    pool: LeanPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await _backend(pool)
    assert await _backend(pool) == before  # kept while fresh
    monkeypatch.setattr(db, "IDLE_LIFETIME", 0.0)
    after = await _backend(pool)
    assert after != before
    assert pool.get_size() == 1


async def _plan_cache_mode() -> str:
    rows = await db.engine().run_querystring(db.QueryString("SHOW plan_cache_mode"))
    return str(rows[0]["plan_cache_mode"])


async def test_lists_are_planned_for_their_values_and_other_statements_generically(
    client: AsyncClient,
) -> None:
    """A statement asyncpg keeps prepared gets a generic plan after five runs (no planning:
    the session's statement planned in 0.44 ms and ran in 0.1), except in the lists, searches
    and map points, whose trigram and partial indexes a generic plan cannot use."""
    assert await _plan_cache_mode() == "auto"
    assert await db.planned_for_values(_plan_cache_mode)() == "force_custom_plan"
    assert await _plan_cache_mode() == "auto"  # back once the list is read
    engine = db.engine()
    assert isinstance(engine, db.Postgres)
    await build_world()
    assert (await client.get("/tables/flamants-iris?q=banc")).status_code == 200
    assert engine._planned is not None
    assert engine._planned.get_size() >= 1  # the list's statements went there
