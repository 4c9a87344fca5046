"""Votes: opening, casting once (also under concurrency), closing, deciding, results."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from httpx import AsyncClient

from accounts.services import load_principal, open_session
from proposals.models import ADOPTED, VOTING, Proposal
from tables.models import Membership
from tests.conftest import DATABASE_KIND, make_client
from tests.factories import add_proposal, add_user, build_world, csrf_token, post_form, sign_in, t
from voix.forms import UserError
from voix.web import SESSION_COOKIE
from votes import services
from votes.models import Ballot, Participation, SealedBallot, Vote


async def open_vote_on(client: AsyncClient, world, proposal_id: int) -> int:
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client, f"/proposals/{proposal_id}/votes", {"question": "Adopter ?"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


async def test_facilitator_opens_a_vote_and_a_resident_votes_once(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    vote_id = await open_vote_on(client, world, proposal)
    assert (await Proposal.select(Proposal.status).first())["status"] == VOTING

    await sign_in(client, world.users["resident_a"])
    page = await client.get(f"/votes/{vote_id}")
    assert 'name="choice"' in page.text
    cast = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    assert cast.status_code == 200
    receipt = re.search(r'<strong class="code">([0-9A-Z]{8})</strong>', cast.text)
    assert receipt, cast.text
    again = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "no"})
    assert again.status_code == 409
    assert t(services.ALREADY_VOTED) in again.text
    assert await SealedBallot.count() == 1
    assert await Participation.count() == 1
    assert await Ballot.count() == 0  # sealed until the vote closes

    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/votes/{vote_id}/close", {})
    assert await SealedBallot.count() == 0
    ballot = await Ballot.select(Ballot.choice, Ballot.receipt).first()
    assert ballot == {"choice": "yes", "receipt": receipt.group(1)}


async def test_a_ballot_cannot_be_linked_to_its_voter(client: AsyncClient) -> None:
    assert {c._meta.name for c in Ballot._meta.columns} == {"id", "vote", "receipt", "choice"}
    assert {c._meta.name for c in SealedBallot._meta.columns} == {"id", "vote", "sealed"}
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"])
    cast = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "abstain"})
    receipt = re.search(r'<strong class="code">([0-9A-Z]{8})</strong>', cast.text).group(1)
    sealed = (await SealedBallot.select(SealedBallot.sealed).first())["sealed"]
    assert "abstain" not in sealed
    assert receipt not in sealed  # a stolen database shows who voted, not what


async def test_residents_cannot_open_votes_and_outsiders_cannot_vote(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    for role in ("resident_a", "facilitator_b", "coordinator_b"):
        await sign_in(client, world.users[role])
        response = await post_form(
            client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"}
        )
        assert response.status_code == 403, role
    assert await Vote.count() == 0

    vote_id = await open_vote_on(client, world, proposal)
    for role in ("resident_b", "facilitator_b", "coordinator_a", "admin", "outsider"):
        await sign_in(client, world.users[role])
        response = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
        assert response.status_code == 403, role
    assert await Ballot.count() == 0


async def test_invalid_choice_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"])
    for choice in ("", "maybe", "yes' OR 1=1"):
        response = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": choice})
        assert response.status_code == 400
    assert await Ballot.count() == 0
    assert await Participation.count() == 0


async def test_ballot_on_a_closed_vote_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    closed = await post_form(client, f"/votes/{vote_id}/close", {}, follow_redirects=False)
    assert closed.status_code == 303
    again = await post_form(client, f"/votes/{vote_id}/close", {})
    assert again.status_code == 409
    assert t(services.ALREADY_CLOSED) in again.text
    await sign_in(client, world.users["resident_a"])
    response = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    assert response.status_code == 409
    assert t(services.VOTE_NOT_OPEN) in response.text
    assert await Ballot.count() == 0


async def test_fifty_concurrent_votes_count_exactly_once_each(client: AsyncClient, app) -> None:
    """50 ballots from one resident and one from each of 50 others, all at once: 51 count."""
    world = await build_world()
    voters = []
    for n in range(50):
        user_id = await add_user(f"voter-{n}")
        await Membership.insert(Membership(user=user_id, table=world.table_a["id"]))
        voters.append(await open_session(user_id))
    same_resident = await open_session(world.users["resident_a"])
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    token = await csrf_token(client)

    async def cast(session_token: str, choice: str) -> int:
        async with make_client(app) as voter:  # each voter has their own browser
            voter.cookies.update({SESSION_COOKIE: session_token, "csrftoken": token})
            response = await voter.post(
                f"/votes/{vote_id}/ballot", data={"choice": choice, "_csrf_token": token}
            )
        return response.status_code

    statuses = await asyncio.gather(
        *[cast(same_resident, "no") for _ in range(50)],
        *[cast(voter, "yes") for voter in voters],
    )
    assert statuses.count(200) == 51, sorted(statuses)
    assert statuses.count(409) == 49
    assert await SealedBallot.count() == 51
    assert await Participation.count() == 51
    assert (await services.turnout([vote_id]))[vote_id] == 51
    await post_form(client, f"/votes/{vote_id}/close", {})
    assert await Ballot.count() == 51
    tally = (await services.tallies([vote_id]))[vote_id]
    assert tally == {"yes": 50, "no": 1}


async def test_decision_after_the_vote_and_published_results(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    vote_id = await open_vote_on(client, world, proposal)
    early = await post_form(client, f"/proposals/{proposal}/decision", {"decision": "adopted"})
    assert early.status_code == 409
    assert t(services.VOTE_STILL_OPEN) in early.text

    await sign_in(client, world.users["resident_a"])
    await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    api_open = (await client.get(f"/api/v1/votes/{vote_id}")).json()
    assert api_open["ballots"] == 1
    assert api_open["counts"] is None

    resident_decides = await post_form(
        client, f"/proposals/{proposal}/decision", {"decision": "adopted"}
    )
    assert resident_decides.status_code == 403

    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/votes/{vote_id}/close", {})
    decided = await post_form(
        client, f"/proposals/{proposal}/decision", {"decision": "adopted"}, follow_redirects=False
    )
    assert decided.status_code == 303
    assert (await Proposal.select(Proposal.status).first())["status"] == ADOPTED
    twice = await post_form(client, f"/proposals/{proposal}/decision", {"decision": "rejected"})
    assert twice.status_code == 409

    api_closed = (await client.get(f"/api/v1/votes/{vote_id}")).json()
    assert api_closed["counts"] == {"yes": 1}
    table_page = await client.get("/tables/flamants-iris")
    assert t("Adopted") in table_page.text
    assert '<meter min="0" max="1" value="1">' in table_page.text


async def test_joining_after_a_vote_opened_gives_no_ballot_in_it(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["outsider"])
    joined = await post_form(client, "/tables/flamants-iris/join", {}, follow_redirects=False)
    assert joined.status_code == 303
    response = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    assert response.status_code == 403
    assert t(services.JOINED_AFTER_OPENING) in response.text
    assert await Participation.count() == 0
    assert await SealedBallot.count() == 0


async def test_those_who_manage_a_table_cannot_join_it_to_vote(client: AsyncClient) -> None:
    world = await build_world()
    for role in ("admin", "coordinator_a"):
        await sign_in(client, world.users[role])
        response = await post_form(client, "/tables/flamants-iris/join", {})
        assert response.status_code == 403, role
    assert await Membership.count() == 4  # the seats build_world made


async def test_decision_must_be_adopted_or_rejected(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    for decision in ("", "adopte", "ADOPTED"):
        response = await post_form(
            client, f"/proposals/{proposal}/decision", {"decision": decision}
        )
        assert response.status_code == 400, decision
    assert (await Proposal.select(Proposal.status).first())["status"] == "submitted"


async def test_an_invalid_question_is_explained(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    for question in ("", "   ", "abcd", "x" * 201):
        response = await post_form(client, f"/proposals/{proposal}/votes", {"question": question})
        assert response.status_code == 400, question
        assert 'id="f-question-error"' in response.text
    assert await Vote.count() == 0


async def test_opening_and_deciding_at_once_never_leave_a_decided_proposal_voting(
    client: AsyncClient,
) -> None:
    world = await build_world()
    manager = await load_principal(await open_session(world.users["facilitator_a"], verified=True))
    proposals = [await add_proposal(world.table_a, f"Proposition {n}") for n in range(12)]

    async def attempt(call):
        with contextlib.suppress(UserError):
            await call

    await asyncio.gather(
        *[attempt(services.open_vote(manager, world.table_a, p, "Adopter ?")) for p in proposals],
        *[attempt(services.decide(manager, world.table_a, p, "adopted")) for p in proposals],
    )
    rows = await Proposal.select(Proposal.id, Proposal.status)
    for row in rows:
        open_votes = await Vote.count().where(
            (Vote.proposal == row["id"]) & (Vote.status == "open")
        )
        assert (row["status"], open_votes) in {("voting", 1), ("adopted", 0)}, row


@pytest.mark.postgres_only
@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="xmin is PostgreSQL's")
async def test_closed_ballots_share_no_transaction_with_participations(client: AsyncClient) -> None:
    world = await build_world()
    voters = []
    for n in range(6):
        user_id = await add_user(f"voter-{n}")
        await Membership.insert(Membership(user=user_id, table=world.table_a["id"]))
        voters.append(user_id)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    for user_id in voters:
        await sign_in(client, user_id)
        await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/votes/{vote_id}/close", {})
    ballots = await Ballot.raw("SELECT DISTINCT xmin::text AS x FROM ballot")
    participations = await Participation.raw(
        "SELECT DISTINCT xmin::text AS x FROM vote_participation"
    )
    assert len(ballots) == 1  # all written by the closing transaction
    assert ballots[0]["x"] not in {row["x"] for row in participations}
