"""The list of tables kept under the session's revisions (tables.services._directory), the
triggers that move them, and the static map drawn in a worker: from an outsider's attack."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from accounts.services import load_principal
from maps.models import District
from tables import services
from tables.models import Organisation, Table, TableDistrict
from tests.factories import add_table, add_tables, build_world, sign_in
from voix.web import SESSION_COOKIE

pytestmark = pytest.mark.usefixtures("empty_cache")  # tests/conftest.py


async def test_a_table_created_during_a_request_and_then_deleted_is_gone(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request reads the revisions with its session (key K0); a table is created (committed)
    before the same request reads the list of tables: the list, which holds the new table, is
    kept under K0. Once that table is deleted, every table's revision is K0 again: every
    signed-in reader would be served the list holding the deleted table, and its page open: a
    list is kept only under the revisions it was read with."""
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    read_tables = services._read_tables
    created = False

    async def table_created_meanwhile():  # type: ignore[no-untyped-def]
        nonlocal created
        if not created:
            created = True
            await add_table("table-ephemere", "avec-nous")  # another process, committed
        return await read_tables()

    monkeypatch.setattr(services, "_read_tables", table_created_meanwhile)
    assert "Table Ephemere" in (await client.get("/")).text  # fresher than its key: harmless
    monkeypatch.setattr(services, "_read_tables", read_tables)

    ephemeral = await Table.select(Table.id).where(Table.slug == "table-ephemere").first()
    await TableDistrict.delete().where(TableDistrict.table == ephemeral["id"])
    await Table.delete().where(Table.id == ephemeral["id"])
    assert await Table.count().where(Table.slug == "table-ephemere") == 0

    session = client.cookies.get(SESSION_COOKIE)
    client.cookies.delete(SESSION_COOKIE)
    assert "Table Ephemere" not in (await client.get("/")).text  # anonymous: read fresh
    client.cookies.set(SESSION_COOKIE, session)
    home = await client.get("/")
    page = await client.get("/tables/table-ephemere")
    assert ("Table Ephemere" in home.text, page.status_code) == (False, 404)


async def test_each_change_the_directory_holds_moves_the_key() -> None:
    """Guard: each column the kept directory holds, changed, is seen by the next session."""
    world = await build_world()
    from accounts.services import open_session

    token = await open_session(world.users["resident_a"], verified=True)

    async def seen(slug: str) -> dict:
        principal = await load_principal(token)
        assert principal.revisions is not None
        return await services.get_table(slug, principal.revisions)

    a = await seen("flamants-iris")
    b_org = world.table_b["organisation"]
    await Table.update({Table.organisation: b_org}).where(Table.id == a["id"])
    assert (await seen("flamants-iris"))["organisation"] == b_org
    await Organisation.update({Organisation.slug: "autre-slug"}).where(Organisation.id == b_org)
    assert (await seen("flamants-iris"))["organisation_slug"] == "autre-slug"
    await Table.update({Table.postcode: "13015", Table.description: "Nouvelle"}).where(
        Table.id == a["id"]
    )
    got = await seen("flamants-iris")
    assert (got["postcode"], got["description"]) == ("13015", "Nouvelle")
    other = await District.select(District.id).where(District.slug == "les-aygalades").first()
    await TableDistrict.insert(TableDistrict(table=a["id"], district=other["id"]))
    assert len((await seen("flamants-iris"))["districts"]) == 2
    await TableDistrict.delete().where(TableDistrict.district == other["id"])
    assert len((await seen("flamants-iris"))["districts"]) == 1
    await District.update({District.approximate: True}).where(District.slug == "flamants-iris")
    assert (await seen("flamants-iris"))["districts"][0]["approximate"]
    await Table.update({Table.slug: "flamants"}).where(Table.id == a["id"])
    assert (await seen("flamants"))["id"] == a["id"]
    with pytest.raises(Exception, match="Not Found"):
        await seen("flamants-iris")


async def test_a_district_deleted_moves_its_tables_key() -> None:
    """Guard: a district deleted takes its link with it (ON DELETE CASCADE): the table's
    revision moves on SQLite as on PostgreSQL."""
    world = await build_world()
    row = await Table.select(Table.revision).where(Table.id == world.table_a["id"]).first()
    await District.delete().where(District.slug == "flamants-iris")
    after = await Table.select(Table.revision).where(Table.id == world.table_a["id"]).first()
    assert after["revision"] != row["revision"]


async def test_the_map_drawn_in_a_worker_is_in_the_readers_language(client: AsyncClient) -> None:
    """Guard: the static map's list is in the reader's language when drawn in a worker."""
    from tests.factories import FLAMANTS_SQUARE, add_proposal, draw_district, t

    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    await add_proposal(world.table_a, "Un banc", latitude=43.329, longitude=5.41)
    await add_proposal(world.table_b, "Autre table", latitude=43.329, longitude=5.41)
    await sign_in(client, world.users["resident_a"])
    for lang in ("ar", "fr"):
        page = (await client.get(f"/tables/flamants-iris?lang={lang}")).text
        assert t("Proposals on the map", lang) in page, lang
        assert "Un banc" in page
        assert "Autre table" not in page


async def test_a_worker_dead_while_idle_is_replaced() -> None:
    """A worker killed while the pool is idle (the OOM killer): the executor marks itself
    broken, and submit() raises BrokenProcessPool at once; the pool is replaced there, or every
    later job would fail, and every table's map be drawn in the web process from then on."""
    import asyncio
    import os
    import signal
    from concurrent.futures.process import BrokenProcessPool

    from voix import workers

    assert await workers.run(int) == 0
    pool = workers._pool
    assert pool is not None
    os.kill(next(iter(pool._processes)), signal.SIGKILL)  # type: ignore[attr-defined]
    for _ in range(100):
        if pool._broken:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    outcomes = []
    try:
        for _ in range(3):
            try:
                outcomes.append(await workers.run(int))
            except BrokenProcessPool:
                outcomes.append("broken")
    finally:
        if workers._pool is pool:
            workers._discard(pool)
    assert outcomes[-1] == 0, outcomes


async def test_a_tables_page_does_not_wait_behind_a_document_being_printed(
    client: AsyncClient,
) -> None:
    """Every worker printing (a PDF, here a 3-second stand-in): the table's map is drawn in the
    web process (~15 ms) rather than queued behind them."""
    import asyncio
    import time

    from tests.factories import FLAMANTS_SQUARE, add_proposal, draw_district
    from voix import workers

    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    await add_proposal(world.table_a, "Un banc", latitude=43.329, longitude=5.41)
    await sign_in(client, world.users["resident_a"])
    await asyncio.gather(*(workers.run(int) for _ in range(workers.size())))  # started
    printing = [asyncio.ensure_future(workers.run(time.sleep, 3)) for _ in range(workers.size())]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    page = await client.get("/tables/flamants-iris")
    took = time.monotonic() - started
    await asyncio.gather(*printing)
    assert page.status_code == 200
    assert took < 1.0, f"{took:.2f} s"


async def test_an_organisation_written_to_itself_leaves_its_tables_revisions() -> None:
    """help.services locks the organisation's row by writing its slug to itself (each legal
    text saved): no table's revision moves (on SQLite the triggers lacked PostgreSQL's WHEN,
    and every page kept for the organisation's tables was built again)."""
    world = await build_world()
    organisation = world.table_a["organisation"]
    slug = (
        await Organisation.select(Organisation.slug).where(Organisation.id == organisation).first()
    )["slug"]
    before = (await Table.select(Table.revision).where(Table.id == world.table_a["id"]).first())[
        "revision"
    ]
    await Organisation.update({Organisation.slug: slug}).where(Organisation.id == organisation)
    after = (await Table.select(Table.revision).where(Table.id == world.table_a["id"]).first())[
        "revision"
    ]
    assert after == before


async def test_changes_elsewhere_leave_one_directory_kept(client: AsyncClient) -> None:
    """From an outsider's review: the directory was kept under each set of revisions, so each
    change anywhere left a full copy behind (up to a quarter of the cache each): 10 renames at
    700 tables held 15.8 of the cache's 20 MB and pushed out everything else. One slot now."""
    from tests.test_queries import queries_for
    from voix import cache

    world = await build_world()
    await add_tables(700, "Une table de quartier qui réunit habitantes et habitants. " * 25)
    client.cookies.clear()
    await queries_for(client, "/tables/flamants-iris")
    assert await queries_for(client, "/tables/flamants-iris") == 1  # warm
    await sign_in(client, world.users["resident_a"])
    for i in range(10):
        await Table.update({Table.name: f"Renommée {i}"}).where(Table.slug == f"table-{i}")
        assert "Renommée" in (await client.get("/")).text
    directories = [key for key in cache.pages._entries if key[0] in ("tables", "tables-read")]
    assert directories == [("tables",)]
    assert await queries_for(client, "/") == 1  # the last one is the one kept
    client.cookies.clear()
    assert await queries_for(client, "/tables/flamants-iris") == 1  # not pushed out


async def test_a_change_at_1100_tables_reads_the_directory_in_two_queries(
    client: AsyncClient,
) -> None:
    """From an outsider's review: each table's districts were read and kept one entry each, so
    past the cache's 1,024 entries each read of the directory missed them all (1,104 queries)
    and pushed out every other entry. The districts of every table are one query now."""
    from tests.test_queries import queries_for

    world = await build_world()
    await add_tables(1100, "Une table.")
    await sign_in(client, world.users["resident_a"])
    await queries_for(client, "/")
    assert await queries_for(client, "/") == 1
    client.cookies.clear()
    await queries_for(client, "/tables/flamants-iris")
    warm = await queries_for(client, "/tables/flamants-iris")
    await sign_in(client, world.users["resident_a"])
    await Table.update({Table.name: "Renommée"}).where(Table.slug == "table-5")
    assert await queries_for(client, "/") <= 6
    client.cookies.clear()
    assert await queries_for(client, "/tables/flamants-iris") == warm
