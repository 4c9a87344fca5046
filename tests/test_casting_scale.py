"""Casting a ballot costs a fixed number of queries, however many ballots the vote holds.

The same voter sending ballots in parallel is covered by tests/test_votes.py (fifty at once)
and tests/test_casting.py (the same form four times at once); here, that the work of casting
does not grow with the vote, and that the cheaper path keeps the roll's guarantees.
"""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from accounts.services import open_session
from tests.conftest import make_client
from tests.factories import add_proposal, build_world, csrf_token, sign_in
from tests.test_votes import add_voters, open_vote_on, open_vote_over, receipt_of
from voix import db
from voix.web import SESSION_COOKIE
from votes.models import Participation, SealedBallot

# Queries of one ballot posted and its receipt page (32 before issue 15): the session
# (accounts.services.load_principal: 4 at the time of writing), the vote with its table, its
# options, the ballot itself (one statement on PostgreSQL; two on SQLite, in a transaction),
# the rooms showing the vote, and the receipt page (turnout, the vote's translations,
# channel counts).
CAST_BUDGET = 12


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
    assert first <= CAST_BUDGET, first
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
    assert first <= CAST_BUDGET, first


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
