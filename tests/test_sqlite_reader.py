"""SQLite's shared read connection (voix.db.SQLite): one per event loop, and one that failed is
retired without failing the reads still running on it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from tables.models import Organisation
from tests.conftest import DATABASE_KIND
from voix import db

pytestmark = pytest.mark.skipif(
    DATABASE_KIND != "sqlite", reason="SQLite's shared read connection: SQLite only"
)


async def _reads(count: int) -> list[int]:
    results = await asyncio.gather(*(Organisation.count() for _ in range(count)))
    return list(results)


async def test_two_event_loops_read_at_once_without_closing_each_others_connection() -> None:
    await Organisation.insert(Organisation(slug="org-reader", name="Lecture"))
    errors: list[BaseException] = []
    counts: list[int] = []

    def other_loop() -> None:
        try:
            counts.extend(asyncio.run(_loop_reads()))
        except BaseException as error:  # reported below
            errors.append(error)

    async def _loop_reads() -> list[int]:
        found: list[int] = []
        for _ in range(30):
            found.extend(await _reads(5))
        return found

    thread = threading.Thread(target=other_loop)
    thread.start()
    here: list[int] = []
    for _ in range(30):
        here.extend(await _reads(5))
        await asyncio.sleep(0)
    await asyncio.to_thread(thread.join)
    assert errors == []
    assert set(here) == set(counts) == {1}
    assert len(here) == len(counts) == 150


async def test_a_failed_read_does_not_fail_the_reads_running_beside_it() -> None:
    await Organisation.insert(Organisation(slug="org-reader", name="Lecture"))
    engine = db.engine()
    assert isinstance(engine, db.SQLite)
    first = await engine._read_connection()

    async def broken() -> None:
        await Organisation.raw("SELECT no_such_column FROM organisation")

    results = await asyncio.gather(
        *(Organisation.count() for _ in range(10)),
        broken(),
        *(Organisation.count() for _ in range(10)),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], sqlite3.OperationalError)
    assert [r for r in results if not isinstance(r, BaseException)] == [1] * 20
    # The failed connection was retired: the next read opens another, and reads on.
    assert await Organisation.count() == 1
    assert await engine._read_connection() is not first
