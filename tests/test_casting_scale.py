"""Casting a ballot costs a fixed number of queries, however many ballots the vote holds.

The same voter sending ballots in parallel is covered by tests/test_votes.py (fifty at once)
and tests/test_casting.py (the same form four times at once); here, that the work of casting
does not grow with the vote, and that the cheaper path keeps the roll's guarantees.
"""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient

from accounts.services import load_principal, open_session
from tests.conftest import make_client
from tests.factories import add_proposal, build_world, csrf_token, post_form, sign_in
from tests.test_votes import add_voters, close_by_hand, open_vote_on, open_vote_over, receipt_of
from voix import db
from voix.web import SESSION_COOKIE
from votes import services as votes
from votes.models import Participation, SealedBallot, Vote, VoteOption


# Queries of one ballot posted and its receipt page (32 before issue 15, then 12, then 3): the
# session (accounts.services.load_principal) and the ballot itself, one statement on
# PostgreSQL. The vote with its table, its options and the rooms showing it are kept by the
# process (votes.services.get_for_ballot, ballot_options; meetings_showing_vote), the first
# checked by the statement against the table's revision. SQLite, in a transaction: the
# revision, the roll's row and the sealed ballot (nothing crosses a network there).
def cast_budget() -> int:
    return 2 if isinstance(db.engine(), db.Postgres) else 4


async def _cast_queries(client: AsyncClient, vote_id: int, user_id: int, data: dict) -> int:
    await sign_in(client, user_id)
    token = await csrf_token(client)
    before = db.engine().queries_run
    response = await client.post(f"/votes/{vote_id}/ballot", data={**data, "_csrf_token": token})
    spent = db.engine().queries_run - before
    assert response.status_code == 200, response.text[-2000:]
    assert receipt_of(response)
    return spent


async def test_casting_does_not_grow_its_queries_with_the_ballots_cast(
    client: AsyncClient,
) -> None:
    world = await build_world()
    voters = await add_voters(world, 24)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    # The first request of a process warms what is kept between requests (the table's).
    await _cast_queries(client, vote_id, voters[0], {"choice": "yes"})
    first = await _cast_queries(client, vote_id, voters[1], {"choice": "yes"})
    for voter in voters[2:20]:
        await _cast_queries(client, vote_id, voter, {"choice": "no"})
    later = await _cast_queries(client, vote_id, voters[20], {"choice": "abstain"})
    assert first, "the query counter counted nothing"
    assert later == first
    assert first <= cast_budget(), first
    assert await Participation.count() == await SealedBallot.count() == 21


async def test_a_graded_ballot_stays_within_the_same_budget(client: AsyncClient) -> None:
    world = await build_world()
    voters = await add_voters(world, 6)
    proposals = [await add_proposal(world.table_a, f"Proposition {n}") for n in range(4)]
    vote_id = await open_vote_over(client, world, proposals)
    page = await client.get(f"/votes/{vote_id}")
    options = sorted(set(__import__("re").findall(r'name="grade-(\d+)"', page.text)))
    assert len(options) == 4
    grades = {f"grade-{option}": "1" for option in options}
    await _cast_queries(client, vote_id, voters[0], grades)
    first = await _cast_queries(client, vote_id, voters[1], grades)
    for voter in voters[2:5]:
        await _cast_queries(client, vote_id, voter, grades)
    later = await _cast_queries(client, vote_id, voters[5], grades)
    assert later == first
    assert first <= cast_budget(), first


async def test_parallel_ballots_of_one_voter_with_one_form_and_with_many(
    client: AsyncClient, app: object
) -> None:
    """Ten requests of one voter at once, half of them the same form: one ballot, and the
    same form's answers all carry its receipt."""
    world = await build_world()
    (voter,) = await add_voters(world, 1)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    session = await open_session(voter)
    token = await csrf_token(client)

    async def send(submission: str | None) -> tuple[int, str | None]:
        async with make_client(app) as browser:
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            data = {"choice": "yes", "_csrf_token": token}
            if submission:
                data["submission"] = submission
            answer = await browser.post(f"/votes/{vote_id}/ballot", data=data)
        return answer.status_code, receipt_of(answer) if answer.status_code == 200 else None

    same = "S" * 22
    answers = await asyncio.gather(
        *[send(same) for _ in range(5)], *[send(f"{n}" * 22) for n in range(5)]
    )
    accepted = [receipt for status, receipt in answers if status == 200]
    assert {status for status, _ in answers} <= {200, 409}, answers
    assert len(set(accepted)) == 1, answers
    assert await Participation.count() == await SealedBallot.count() == 1


async def test_a_ballot_reads_its_vote_again_when_the_table_changed_since(
    client: AsyncClient,
) -> None:
    """What a process keeps of a vote for its ballots (votes.services.get_for_ballot) is
    checked by the statement that writes each ballot against the table's revision: a vote
    changed since shows as it is on the next receipt, and one closed since takes no ballot."""
    world = await build_world()
    voters = await add_voters(world, 3)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await _cast_queries(client, vote_id, voters[0], {"choice": "yes"})  # kept from here
    await Vote.update({Vote.question: "Un banc devant la nouvelle école ?"}).where(
        Vote.id == vote_id
    )
    await sign_in(client, voters[1])
    answer = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "no"})
    assert answer.status_code == 200, answer.text[-2000:]
    assert receipt_of(answer)
    assert "Un banc devant la nouvelle école ?" in answer.text
    await close_by_hand(client, world, vote_id)
    await sign_in(client, voters[2])
    late = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "no"})
    assert late.status_code == 409, late.text[-2000:]
    assert "Ce vote est clos" in late.text
    assert await Participation.count() == 2  # the sealed ballots were opened at closing


async def test_a_ballot_under_a_revision_the_table_no_longer_has_writes_nothing(
    client: AsyncClient,
) -> None:
    world = await build_world()
    voter = await load_principal(await open_session(world.users["resident_a"]))
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    _, table = await votes.get_for_ballot(vote_id, kept=True)
    await VoteOption.update({VoteOption.label: "Un banc, devant l'école"}).where(
        VoteOption.vote == vote_id
    )
    with pytest.raises(votes.Stale):
        await votes.cast(voter, table, vote_id, {"choice": "yes"}, revision=table["revision"])
    assert await Participation.count() == await SealedBallot.count() == 0
    _, now = await votes.get_for_ballot(vote_id)  # read again (as the page does then)
    assert now["revision"] != table["revision"]
    assert (await votes.get_for_ballot(vote_id, kept=True))[1] == now  # and kept so
    assert await votes.cast(voter, now, vote_id, {"choice": "yes"}, revision=now["revision"])
    assert await Participation.count() == await SealedBallot.count() == 1


async def test_a_ballot_with_what_is_written_beside_it_leaves_the_revision_alone(
    client: AsyncClient,
) -> None:
    """The tablet's ballots (record_ballot with `also`) lock the vote's row without writing
    it: a write that changed nothing moved the table's revision, and with it every page and
    every vote kept for the table, at each ballot in the room."""
    from tables.models import Table

    world = await build_world()
    voters = await add_voters(world, 2)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    _, table = await votes.get_for_ballot(vote_id)
    written: list[int] = []

    async def also(participation: int) -> None:
        written.append(participation)

    (option,) = (await votes.options([vote_id]))[vote_id]
    for voter in voters:
        await votes.record_ballot(
            table,
            vote_id,
            [(option["id"], 0)],
            person=f"user:{voter}",
            user_id=voter,
            channel="online",
            also=also,
        )
    assert len(written) == 2
    now = await Table.select(Table.revision).where(Table.id == table["id"]).first()
    assert now["revision"] == table["revision"]


async def test_a_refused_ballot_is_refused_once(client: AsyncClient) -> None:
    """A refusal read from the rows (on the roll already) is not asked again from a fresh
    read of the vote: it costs what it cost before the vote was kept."""
    world = await build_world()
    voters = await add_voters(world, 2)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await _cast_queries(client, vote_id, voters[0], {"choice": "yes"})
    await _cast_queries(client, vote_id, voters[1], {"choice": "yes"})  # kept from here
    token = await csrf_token(client)
    before = db.engine().queries_run
    again = await client.post(
        f"/votes/{vote_id}/ballot", data={"choice": "no", "_csrf_token": token}
    )
    spent = db.engine().queries_run - before
    assert again.status_code == 409, again.text[-2000:]
    # The statement, then once: the form's earlier row, the vote's lock, the electorate,
    # the roll (and BEGIN/COMMIT on SQLite); twice that before this test.
    assert spent <= (9 if isinstance(db.engine(), db.Postgres) else 10), spent
    assert await Participation.count() == 2
