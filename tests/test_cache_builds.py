"""One build at a time per kept key (voix.cache.Cache.get_or_build): requests that miss a key
being built wait for that build, so a time limit passing under load does not make every
request of a worker build the same sidebar at once (issue 15)."""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient

from tables import controllers as table_controllers
from tests.factories import build_world
from voix import cache, db


class Builds:
    """A build that counts its runs and lasts until `release` is set."""

    def __init__(self, fail_first: bool = False) -> None:
        self.runs = 0
        self.fail_first = fail_first
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.runs += 1
        run = self.runs
        await self.release.wait()
        if self.fail_first and run == 1:
            raise RuntimeError("the database went away")
        return f"built by run {run}"


async def test_requests_that_miss_a_key_being_built_wait_for_that_build() -> None:
    kept = cache.Cache()
    build = Builds()
    asking = [asyncio.ensure_future(kept.get_or_build(("side", 1), build)) for _ in range(10)]
    await asyncio.sleep(0.01)
    build.release.set()
    assert await asyncio.gather(*asking) == ["built by run 1"] * 10
    assert build.runs == 1
    assert kept.get(("side", 1)) == "built by run 1"
    # Another key is built apart, and the key built is not built again.
    assert await kept.get_or_build(("side", 2), build) == "built by run 2"
    assert await kept.get_or_build(("side", 1), build) == "built by run 1"
    assert build.runs == 2


async def test_when_the_build_fails_those_waiting_build_it_themselves() -> None:
    kept = cache.Cache()
    build = Builds(fail_first=True)
    first = asyncio.ensure_future(kept.get_or_build(("side", 1), build))
    await asyncio.sleep(0.01)
    waiting = [asyncio.ensure_future(kept.get_or_build(("side", 1), build)) for _ in range(3)]
    await asyncio.sleep(0.01)
    build.release.set()
    with pytest.raises(RuntimeError, match="went away"):
        await first
    answers = await asyncio.gather(*waiting)
    assert all(answer.startswith("built by run ") for answer in answers), answers
    assert build.runs == 4  # the failed build, then each of those waiting: nothing hangs


async def _builder_and_waiter(
    kept: cache.Cache, build: Builds
) -> tuple[asyncio.Future[str], asyncio.Future[str]]:
    """The request that builds ("side", 1), then one waiting for that build."""
    building = asyncio.ensure_future(kept.get_or_build(("side", 1), build))
    await asyncio.sleep(0.01)
    waiting = asyncio.ensure_future(kept.get_or_build(("side", 1), build))
    await asyncio.sleep(0.01)
    return building, waiting


async def test_when_the_building_request_goes_away_those_waiting_still_get_it() -> None:
    build = Builds()
    first, waiting = await _builder_and_waiter(cache.Cache(), build)
    first.cancel()
    await asyncio.sleep(0.01)
    build.release.set()
    assert await waiting == "built by run 2"
    assert first.cancelled()


async def test_a_waiter_that_goes_away_does_not_cancel_the_build() -> None:
    build = Builds()
    building, impatient = await _builder_and_waiter(cache.Cache(), build)
    impatient.cancel()
    build.release.set()
    assert await building == "built by run 1"
    assert build.runs == 1


async def test_an_entry_is_kept_as_long_as_its_value_says() -> None:
    kept = cache.Cache()
    build = Builds()
    build.release.set()
    await kept.get_or_build(("side", 1), build, seconds=lambda value: 0.0)
    await asyncio.sleep(0.01)
    await kept.get_or_build(("side", 1), build, seconds=lambda value: 3600.0)
    await kept.get_or_build(("side", 1), build, seconds=lambda value: 3600.0)
    assert build.runs == 2  # the first expired at once, the second is kept


async def test_a_table_page_asked_ten_times_at_once_builds_its_side_once(
    client: AsyncClient, app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through HTTP, ten requests at once on a table page nothing kept yet: one build of what
    the page shows beside its list, every page whole."""
    await build_world()
    built = []
    side = table_controllers._side

    async def counted(table: dict, reader: str) -> dict:
        built.append(table["id"])
        await asyncio.sleep(0.05)  # long enough for every request to miss it
        return await side(table, reader)

    monkeypatch.setattr(table_controllers, "_side", counted)
    cache.pages.clear()
    pages = await asyncio.gather(*(client.get("/tables/flamants-iris") for _ in range(10)))
    assert [page.status_code for page in pages] == [200] * 10
    assert len({page.text.count('class="proposal') for page in pages}) == 1
    assert len(built) == 1


async def test_nothing_read_inside_a_transaction_is_kept() -> None:
    """A read inside a transaction may be rolled back, and the revision it was keyed on reused
    by the next change: it is neither kept nor shared with requests asking meanwhile."""
    kept = cache.Cache()
    build = Builds()
    build.release.set()
    async with db.write_transaction():
        assert await kept.get_or_build(("side", 1), build) == "built by run 1"
    assert kept.get(("side", 1)) is None
    assert await kept.get_or_build(("side", 1), build) == "built by run 2"
    assert kept.get(("side", 1)) == "built by run 2"


def _table_page_parts() -> list[tuple]:
    return [
        key
        for key in cache.pages._entries
        if key[:2] == ("fragment", "tables/table.html") and key[2] in ("meetings", "briefs")
    ]


async def test_a_side_not_kept_leaves_no_parts_behind(
    client: AsyncClient, app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts of a table's page rendered from its side are kept under that build of it:
    when the side itself is not kept (at its time limit, too big), nor are they, since no
    later request could find them."""
    await build_world()
    cache.pages.clear()
    await client.get("/tables/flamants-iris")
    assert len(_table_page_parts()) == 2  # meetings, briefs: once for the kept side
    await client.get("/tables/flamants-iris")
    assert len(_table_page_parts()) == 2
    cache.pages.clear()
    monkeypatch.setattr(table_controllers, "_side_seconds", lambda side: 0.0)
    for _ in range(3):
        assert (await client.get("/tables/flamants-iris")).status_code == 200
    assert _table_page_parts() == []
