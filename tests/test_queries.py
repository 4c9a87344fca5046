"""List pages run a fixed number of queries, however many rows they show (no N+1)."""

from __future__ import annotations

import uuid

import pytest
from httpx import AsyncClient

from tests.factories import add_proposal, add_table, build_world, sign_in
from voix import db
from votes.models import Ballot, Vote, VoteOption


async def queries_for(client: AsyncClient, url: str) -> int:
    before = db.engine().queries_run
    response = await client.get(url)
    assert response.status_code == 200
    return db.engine().queries_run - before


async def grow(world, n: int) -> None:
    """n closed votes, each with its option's stored result and a ballot, and n tables."""
    for i in range(n):
        proposal = await add_proposal(world.table_a, f"Proposition numéro {i}", theme="housing")
        rows = await Vote.insert(
            Vote(
                table=world.table_a["id"],
                proposal=proposal,
                question=f"Q{i}",
                status="closed",
                participants=1,
            )
        ).returning(Vote.id)
        vote_id = rows[0]["id"]
        await VoteOption.insert(
            VoteOption(
                vote=vote_id,
                position=0,
                proposal=proposal,
                label=f"Proposition numéro {i}",
                tally="[1, 0, 0]",
                rank=1,
                adopted=True,
            )
        ).returning(VoteOption.id)
        ballot = uuid.uuid4()
        await Ballot.insert(Ballot(id=ballot, vote=vote_id, receipt=f"R{i:07d}", marks="[0]"))
        await add_table(f"table-{n}-{i}", "avec-nous")


async def test_list_pages_do_not_grow_their_queries_with_their_rows(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    urls = [
        "/",
        "/tables/flamants-iris",
        "/tables/flamants-iris?theme=housing",
        "/api/v1/tables",
        "/api/v1/tables/flamants-iris/proposals",
    ]
    await grow(world, 2)
    small = {url: await queries_for(client, url) for url in urls}
    await grow(world, 25)
    large = {url: await queries_for(client, url) for url in urls}
    assert all(small.values()), "the query counter counted nothing"
    assert large == small
    # The table page: table, districts, a page of proposals and its count, their
    # translations, votes, their options (with the stored results), turnout and the reader's
    # participations, briefs, coming meetings, the map's boundaries and points, the session
    # (3). Votes over several proposals keep their results on their options: one query more
    # than when a vote's tally was counted from its ballots. Then one query per kind of text a
    # facilitator may have translated (votes, meetings, briefs; each reads its originals only
    # when a translation exists), and whether the session is a shared tablet.
    assert small["/tables/flamants-iris"] <= 18, small


async def test_pages_read_at_most_four_queries_once_warm(client: AsyncClient) -> None:
    """The budget of issue 15: a page read again, its table unchanged, costs at most four
    queries whatever the rows — the session, the table (or the proposal with its table), the
    live turnout of open votes and whether the reader voted in them. What everyone sees is
    kept until the table's revision changes (tables/revision.py)."""
    world = await build_world()
    await grow(world, 5)
    proposal = await add_proposal(world.table_a, "Un abri pour l'arrêt de bus", theme="transport")
    rows = await Vote.insert(
        Vote(table=world.table_a["id"], proposal=proposal, question="Un abri ?", status="open")
    ).returning(Vote.id)
    await VoteOption.insert(
        VoteOption(vote=rows[0]["id"], position=0, proposal=proposal, label="Un abri ?")
    )
    urls = [
        "/",
        "/tables/flamants-iris",
        "/tables/flamants-iris?theme=transport&sort=supports",
        "/tables/flamants-iris?q=abri",
        f"/proposals/{proposal}",
    ]
    budgets = {}
    for who in ("anonymous", "resident_a"):
        if who != "anonymous":
            await sign_in(client, world.users[who])
        for url in urls:
            await queries_for(client, url)  # cold: kept from here on
            budgets[(who, url)] = await queries_for(client, url)
    over = {key: count for key, count in budgets.items() if count > 4}
    assert not over, over
    # The open vote's turnout is counted at most every TURNOUT_SECONDS: in between, an
    # anonymous reader's page reads its table's revision alone.
    assert budgets[("anonymous", "/tables/flamants-iris")] == 1
    # Home reads the tables (their revisions) alone: the directory read under those is kept.
    assert budgets[("anonymous", "/")] == 1
    assert budgets[("resident_a", "/")] == 1


async def test_a_ballot_shows_in_the_table_s_turnout_within_seconds(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turnout kept for TURNOUT_SECONDS (votes.services.with_live_turnout) is counted again
    after them: a new ballot shows on the table's page."""
    import asyncio

    from tests.test_votes import add_voters, cast_as, open_vote_on, receipt_of
    from votes import services as votes

    monkeypatch.setattr(votes, "TURNOUT_SECONDS", 0.2)
    world = await build_world()
    voters = await add_voters(world, 2)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    assert receipt_of(await cast_as(client, voters[0], vote_id, {"choice": "yes"}))
    client.cookies.clear()
    assert "1 bulletin" in (await client.get("/tables/flamants-iris")).text
    assert receipt_of(await cast_as(client, voters[1], vote_id, {"choice": "no"}))
    client.cookies.clear()
    await asyncio.sleep(0.3)
    assert "2 bulletins" in (await client.get("/tables/flamants-iris")).text


async def test_hundreds_of_tables_keep_a_signed_in_page_at_one_query(client: AsyncClient) -> None:
    """The directory of tables every signed-in page reads is kept past the size at which any
    other entry is not (voix.cache.LARGEST): at 700 tables with long descriptions (~2.5 MB as
    Python holds them) a signed-in home page still reads its session alone."""
    from tables.services import _read_tables
    from tests.factories import add_tables
    from voix import cache

    world = await build_world()
    await add_tables(700, "Une table de quartier qui réunit habitantes et habitants. " * 25)
    assert cache.size_of(await _read_tables()) > cache.LARGEST  # what this test is about
    await sign_in(client, world.users["resident_a"])
    for url in ("/", "/tables/table-699"):
        await queries_for(client, url)  # cold: kept from here on
    assert await queries_for(client, "/") == 1
    assert await queries_for(client, "/tables/table-699") <= 3
    response = await client.get("/")
    assert "Table de quartier numéro 699" in response.text


async def test_voted_in_names_the_reader_s_votes_among_those_asked(client: AsyncClient) -> None:
    """voted_in, written by hand for each database (an array on PostgreSQL, JSON on SQLite):
    the votes asked about where this account took part, not another's, not others asked."""
    from tests.test_votes import add_voters, cast_as, open_vote_on, receipt_of
    from votes import services as votes

    world = await build_world()
    voters = await add_voters(world, 2)
    first = await open_vote_on(client, world, await add_proposal(world.table_a, "Un banc"))
    second = await open_vote_on(client, world, await add_proposal(world.table_a, "Un arbre"))
    third = await open_vote_on(client, world, await add_proposal(world.table_a, "Une fontaine"))
    assert receipt_of(await cast_as(client, voters[0], first, {"choice": "yes"}))
    assert receipt_of(await cast_as(client, voters[0], third, {"choice": "no"}))
    assert receipt_of(await cast_as(client, voters[1], second, {"choice": "yes"}))
    user = voters[0]
    assert await votes.voted_in(user, [first, second, third]) == {first, third}
    assert await votes.voted_in(user, [second]) == set()
    assert await votes.voted_in(user, [third]) == {third}
    assert await votes.voted_in(voters[1], [first, second, third]) == {second}
    assert await votes.voted_in(user, []) == set()
    assert await votes.voted_in(None, [first]) == set()
