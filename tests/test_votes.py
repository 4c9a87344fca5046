"""Votes: opening, casting once and secretly (also under concurrency), closing, deciding.

The helpers at the top are shared with tests/test_votes_priorities.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response

from accounts.services import load_principal, open_session
from proposals.models import ADOPTED, REJECTED, SUBMITTED, VOTING, Proposal
from tables.models import Membership
from tests.conftest import DATABASE_KIND, make_client
from tests.factories import (
    add_proposal,
    add_user,
    build_world,
    csrf_token,
    post_form,
    seat,
    sign_in,
    t,
)
from voix import crypto
from voix.forms import UNKNOWN_CHOICE, FormErrors, UserError
from voix.permissions import Principal
from voix.web import SESSION_COOKIE
from votes import closing, decisions, services
from votes.models import (
    Ballot,
    Decision,
    Participation,
    SealedBallot,
    Vote,
    VoteOption,
)

RECEIPT = re.compile(r'<strong class="code">([0-9A-Z]{8})</strong>')


def tn(singular: str, plural: str, n: int, lang: str = "fr", **params: Any) -> str:
    """A plural message as the catalog of `lang` renders it (see tests.factories.t)."""
    from markupsafe import escape

    from voix.i18n import catalog

    return str(escape(catalog(lang).ngettext(singular, plural, n) % {"num": n, **params}))


def receipt_of(response: Response) -> str:
    found = RECEIPT.search(response.text)
    assert found, response.text[-2000:]
    return found.group(1)


def vote_id_of(response: Response) -> int:
    assert response.status_code == 303, response.text[-2000:]
    return int(response.headers["location"].rsplit("/", 1)[1])


async def manager_of(world) -> Principal:
    return await load_principal(await open_session(world.users["facilitator_a"], verified=True))


async def open_vote_on(client: AsyncClient, world, proposal_id: int, **form: str) -> int:
    """A facilitator of table A opens a vote for or against one proposal, by the form."""
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        f"/proposals/{proposal_id}/votes",
        {"question": "Adopter ?", **form},
        follow_redirects=False,
    )
    return vote_id_of(response)


async def open_vote_over(client: AsyncClient, world, proposal_ids: list[int], **form: Any) -> int:
    """A facilitator of table A opens a vote over several proposals (majority judgment)."""
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        "/tables/flamants-iris/votes",
        {"question": "Que porter en premier ?", "proposals": proposal_ids, **form},
        follow_redirects=False,
    )
    return vote_id_of(response)


async def add_voters(world, n: int, prefix: str = "voter") -> list[int]:
    """n residents of table A, seated now (so before any vote opened after this)."""
    voters = []
    for i in range(n):
        user_id = await add_user(f"{prefix}-{i}")
        await seat(user_id, world.table_a)
        voters.append(user_id)
    return voters


async def cast_as(client: AsyncClient, user_id: int, vote_id: int, data: dict) -> Response:
    await sign_in(client, user_id)
    return await post_form(client, f"/votes/{vote_id}/ballot", data)


async def close_by_hand(client: AsyncClient, world, vote_id: int) -> None:
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(client, f"/votes/{vote_id}/close", {}, follow_redirects=False)
    assert response.status_code == 303, response.text[-2000:]


async def option_ids(vote_id: int) -> list[int]:
    rows = await (
        VoteOption.select(VoteOption.id)
        .where(VoteOption.vote == vote_id)
        .order_by(VoteOption.position)
    )
    return [row["id"] for row in rows]


async def status_of(proposal_id: int) -> str:
    row = await Proposal.select(Proposal.status).where(Proposal.id == proposal_id).first()
    return str(row["status"])


async def test_facilitator_opens_a_vote_and_a_resident_votes_once(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    vote_id = await open_vote_on(client, world, proposal)
    assert await status_of(proposal) == VOTING
    assert len(await option_ids(vote_id)) == 1

    await sign_in(client, world.users["resident_a"])
    page = await client.get(f"/votes/{vote_id}")
    assert 'name="choice"' in page.text
    cast = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "yes"})
    assert cast.status_code == 200
    receipt = receipt_of(cast)
    again = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "no"})
    assert again.status_code == 409
    assert t(services.ALREADY_VOTED) in again.text
    assert await SealedBallot.count() == 1
    assert await Participation.count() == 1
    assert await Ballot.count() == 0  # sealed until the vote closes

    await close_by_hand(client, world, vote_id)
    assert await SealedBallot.count() == 0
    ballot = await Ballot.select(Ballot.receipt, Ballot.marks).first()
    assert ballot == {"receipt": receipt, "marks": "[0]"}  # 0: yes, on the only option
    stored = await VoteOption.select(VoteOption.tally, VoteOption.adopted).first()
    assert stored == {"tally": "[1, 0, 0]", "adopted": True}
    assert await status_of(proposal) == ADOPTED
    decision = await Decision.select(Decision.outcome, Decision.follows_vote, Decision.vote).first()
    assert decision == {"outcome": ADOPTED, "follows_vote": True, "vote": vote_id}


async def test_a_ballot_cannot_be_linked_to_its_voter(client: AsyncClient) -> None:
    assert {c._meta.name for c in Ballot._meta.columns} == {"id", "vote", "receipt", "marks"}
    assert {c._meta.name for c in SealedBallot._meta.columns} == {"id", "vote", "sealed"}
    # The roll says who voted and how (channel, who recorded it), never what, nor which ballot.
    assert {c._meta.name for c in Participation._meta.columns} == {
        "id", "vote", "user", "person", "name", "channel", "recorded_by", "cast_at", "submission"
    }  # fmt: skip
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    (option,) = await option_ids(vote_id)
    receipt = receipt_of(
        await cast_as(client, world.users["resident_a"], vote_id, {"choice": "abstain"})
    )
    sealed = (await SealedBallot.select(SealedBallot.sealed).first())["sealed"]
    for clear in ("abstain", receipt, "marks"):
        assert clear not in sealed  # a stolen database shows who voted, not what
    assert json.loads(crypto.unseal(sealed, "ballot", str(vote_id))) == {
        "receipt": receipt,
        "marks": [[option, 2]],  # 2: abstain
    }
    # AES-GCM, not Fernet (which writes its time in clear): nothing in the token to match with
    # the participation's time (tests/test_casting.py reads a whole database for that).
    assert sealed.startswith(crypto.AEAD_PREFIX)

    await close_by_hand(client, world, vote_id)
    ballot = await Ballot.select(Ballot.id).first()
    assert isinstance(ballot["id"], uuid.UUID)
    assert ballot["id"].version == 4


async def test_residents_cannot_open_votes_and_outsiders_cannot_vote(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    other = await add_proposal(world.table_a, "Un banc devant l'école")
    for role in ("resident_a", "facilitator_b", "coordinator_b"):
        await sign_in(client, world.users[role])
        response = await post_form(
            client, f"/proposals/{proposal}/votes", {"question": "Adopter ?"}
        )
        assert response.status_code == 403, role
        several = await post_form(
            client,
            "/tables/flamants-iris/votes",
            {"question": "Que porter ?", "proposals": [proposal, other]},
        )
        assert several.status_code == 403, role
    assert await Vote.count() == 0
    assert await status_of(proposal) == SUBMITTED

    vote_id = await open_vote_on(client, world, proposal)
    for role in ("resident_b", "facilitator_b", "coordinator_a", "admin", "outsider"):
        response = await cast_as(client, world.users[role], vote_id, {"choice": "yes"})
        assert response.status_code == 403, role
    assert await Participation.count() == 0
    assert await SealedBallot.count() == 0


async def test_invalid_choice_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"])
    for choice in ("maybe", "yes' OR 1=1", "0"):
        response = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": choice})
        assert response.status_code == 400, choice
        assert t(UNKNOWN_CHOICE) in response.text
    assert await SealedBallot.count() == 0
    assert await Participation.count() == 0


async def test_ballot_on_a_closed_vote_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await close_by_hand(client, world, vote_id)
    again = await post_form(client, f"/votes/{vote_id}/close", {})
    assert again.status_code == 409
    assert t(closing.ALREADY_CLOSED) in again.text
    response = await cast_as(client, world.users["resident_a"], vote_id, {"choice": "yes"})
    assert response.status_code == 409
    assert t(services.VOTE_NOT_OPEN) in response.text
    assert await Participation.count() == 0
    assert await Ballot.count() == 0


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


async def test_an_invalid_question_is_explained(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    for question in ("", "   ", "abcd", "x" * 201):
        response = await post_form(client, f"/proposals/{proposal}/votes", {"question": question})
        assert response.status_code == 400, question
        assert 'id="f-question-error"' in response.text
    assert await Vote.count() == 0
    assert await status_of(proposal) == SUBMITTED


async def test_decision_must_be_adopted_or_rejected(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    for decision in ("", "adopte", "ADOPTED"):
        response = await post_form(
            client,
            f"/proposals/{proposal}/decision",
            {"decision": decision, "reason": "Consensus en réunion"},
        )
        assert response.status_code == 400, decision
    assert await status_of(proposal) == SUBMITTED
    assert await Decision.count() == 0


async def test_the_result_decides_and_is_published(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    vote_id = await open_vote_on(client, world, proposal)
    early = await post_form(
        client, f"/proposals/{proposal}/decision", {"decision": "adopted", "reason": "Évident"}
    )
    assert early.status_code == 409
    assert t(decisions.VOTE_STILL_OPEN) in early.text
    assert await Decision.count() == 0

    await cast_as(client, world.users["resident_a"], vote_id, {"choice": "yes"})
    api_open = (await client.get(f"/api/v1/votes/{vote_id}")).json()
    assert api_open["ballots"] == 1
    assert api_open["counts"] is None
    assert api_open["options"][0]["tally"] is None  # nothing of the result before closing
    resident_decides = await post_form(
        client, f"/proposals/{proposal}/decision", {"decision": "adopted", "reason": "Oui"}
    )
    assert resident_decides.status_code == 403

    await close_by_hand(client, world, vote_id)
    assert await status_of(proposal) == ADOPTED  # the result decided, nobody had to
    twice = await post_form(
        client, f"/proposals/{proposal}/decision", {"decision": "adopted", "reason": "Oui"}
    )
    assert twice.status_code == 409
    assert t(decisions.ALREADY_DECIDED) in twice.text
    assert await Decision.count() == 1

    api_closed = (await client.get(f"/api/v1/votes/{vote_id}")).json()
    assert api_closed["counts"] == {"yes": 1, "no": 0, "abstain": 0}
    assert api_closed["options"][0]["adopted"] is True
    assert (await services.yes_no_counts([vote_id]))[vote_id] == {"yes": 1, "no": 0, "abstain": 0}
    table_page = await client.get("/tables/flamants-iris")
    assert t("Adopted") in table_page.text
    # The bar of "for", full, in its own colour; the count is said in words beside it.
    assert 'width="100.0" height="12" fill="#1f6b3a"' in table_page.text


async def test_fifty_concurrent_votes_count_exactly_once_each(client: AsyncClient, app) -> None:
    """50 ballots from one resident and one from each of 50 others, all at once: 51 count."""
    world = await build_world()
    voters = [await open_session(user) for user in await add_voters(world, 50)]
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
    await close_by_hand(client, world, vote_id)
    assert await Ballot.count() == 51
    assert (await services.yes_no_counts([vote_id]))[vote_id] == {"yes": 50, "no": 1, "abstain": 0}


async def test_ballots_cast_while_the_vote_closes_are_counted_or_refused(
    client: AsyncClient, app
) -> None:
    """Ballots racing the closing: each is counted or refused as closed, none half-stored."""
    world = await build_world()
    voters = [await open_session(user) for user in await add_voters(world, 12)]
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    facilitator = client.cookies[SESSION_COOKIE]
    token = await csrf_token(client)

    async def post(session_token: str, path: str, data: dict) -> int:
        async with make_client(app) as browser:
            browser.cookies.update({SESSION_COOKIE: session_token, "csrftoken": token})
            response = await browser.post(path, data={**data, "_csrf_token": token})
        return response.status_code

    statuses = await asyncio.gather(
        *[post(voter, f"/votes/{vote_id}/ballot", {"choice": "yes"}) for voter in voters[:6]],
        post(facilitator, f"/votes/{vote_id}/close", {}),
        *[post(voter, f"/votes/{vote_id}/ballot", {"choice": "no"}) for voter in voters[6:]],
    )
    close_status = statuses.pop(6)
    assert close_status == 303
    assert set(statuses) <= {200, 409}, statuses
    counted = statuses.count(200)
    assert await SealedBallot.count() == 0
    assert await Participation.count() == counted
    assert await Ballot.count() == counted
    counts = (await services.yes_no_counts([vote_id]))[vote_id]
    assert sum(counts.values()) == counted
    assert counts["yes"] == statuses[:6].count(200)


async def test_concurrent_graded_ballots_each_count_once(client: AsyncClient, app) -> None:
    """Majority judgment under load: one ballot per person, every mark of it, nothing more."""
    world = await build_world()
    proposals = [await add_proposal(world.table_a, f"Proposition {n}") for n in range(3)]
    voters = [await open_session(user) for user in await add_voters(world, 15)]
    vote_id = await open_vote_over(client, world, proposals)
    options = await option_ids(vote_id)
    token = await csrf_token(client)
    grades = {f"grade-{option}": str(n) for n, option in enumerate(options)}  # 0, 1, 2

    async def cast(session_token: str) -> int:
        async with make_client(app) as voter:
            voter.cookies.update({SESSION_COOKIE: session_token, "csrftoken": token})
            response = await voter.post(
                f"/votes/{vote_id}/ballot", data={**grades, "_csrf_token": token}
            )
        return response.status_code

    statuses = await asyncio.gather(*[cast(voters[n % 5]) for n in range(15)])
    assert sorted(statuses) == [200] * 5 + [409] * 10
    assert await Participation.count() == 5
    await close_by_hand(client, world, vote_id)
    assert await Ballot.count() == 5
    assert all(len(json.loads(row["marks"])) == 3 for row in await Ballot.select(Ballot.marks))
    tallies = {
        row["id"]: json.loads(row["tally"])
        for row in await VoteOption.select(VoteOption.id, VoteOption.tally)
    }
    assert [tallies[option][n] for n, option in enumerate(options)] == [5, 5, 5]
    assert all(sum(tally) == 5 for tally in tallies.values())


async def test_opening_and_deciding_at_once_never_leave_a_decided_proposal_voting(
    client: AsyncClient,
) -> None:
    world = await build_world()
    manager = await manager_of(world)
    proposals = [await add_proposal(world.table_a, f"Proposition {n}") for n in range(12)]

    async def attempt(call):
        with contextlib.suppress(UserError, FormErrors):
            await call

    await asyncio.gather(
        *[
            attempt(services.open_vote(manager, world.table_a, [p], {"question": "Adopter ?"}))
            for p in proposals
        ],
        *[
            attempt(
                decisions.decide(
                    manager, world.table_a, p, {"decision": "adopted", "reason": "Consensus"}
                )
            )
            for p in proposals
        ],
    )
    for row in await Proposal.select(Proposal.id, Proposal.status):
        open_votes = await VoteOption.count().where(
            (VoteOption.proposal == row["id"]) & (VoteOption.vote.status == "open")
        )
        decided = await Decision.count().where(Decision.proposal == row["id"])
        assert (row["status"], open_votes, decided) in {(VOTING, 1, 0), (ADOPTED, 0, 1)}, row


async def test_service_signatures_decide_and_close(client: AsyncClient) -> None:
    """The services as other domains call them: open, cast, close, decide against the result."""
    world = await build_world()
    manager = await manager_of(world)
    resident = await load_principal(await open_session(world.users["resident_a"]))
    proposal = await add_proposal(world.table_a)
    vote_id = await services.open_vote(manager, world.table_a, [proposal], {"question": "Oui ?"})
    receipt = await services.cast(resident, world.table_a, vote_id, {"choice": "no"})
    await closing.close_vote(manager, world.table_a, vote_id)
    with pytest.raises(UserError):
        await closing.close_vote(manager, world.table_a, vote_id)
    (vote,) = await services.with_results([await services.get(vote_id)])
    assert vote["options"][0]["tally"] == [0, 1, 0]
    assert vote["options"][0]["adopted"] is False
    assert await services.receipt_found(vote, receipt.lower())
    assert await status_of(proposal) == REJECTED
    with pytest.raises(FormErrors) as no_reason:
        await decisions.decide(manager, world.table_a, proposal, {"decision": "adopted"})
    assert set(no_reason.value.errors) == {"reason"}
    await decisions.decide(
        manager, world.table_a, proposal, {"decision": "adopted", "reason": "Consensus"}
    )
    assert await status_of(proposal) == ADOPTED
    latest = (await decisions.latest([proposal]))[proposal]
    assert (latest["outcome"], latest["follows_vote"], latest["reason"]) == (
        ADOPTED,
        False,
        "Consensus",
    )


@pytest.mark.postgres_only
@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="xmin is PostgreSQL's")
async def test_closed_ballots_share_no_transaction_with_participations(client: AsyncClient) -> None:
    world = await build_world()
    voters = await add_voters(world, 6)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    for user_id in voters:
        await cast_as(client, user_id, vote_id, {"choice": "yes"})
    await close_by_hand(client, world, vote_id)
    ballots = await Ballot.raw("SELECT DISTINCT xmin::text AS x FROM ballot")
    participations = await Participation.raw(
        "SELECT DISTINCT xmin::text AS x FROM vote_participation"
    )
    assert len(ballots) == 1  # all written by the closing transaction
    assert ballots[0]["x"] not in {row["x"] for row in participations}
