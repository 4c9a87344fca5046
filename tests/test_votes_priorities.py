"""Votes over several proposals: opening, grading, closing at its time, deciding, recounting.

Majority judgment and approval through the pages residents and facilitators use; the rule
fixed at opening decides at closing; the public ballot box recounts to the same result.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from accounts.services import load_principal, open_session
from audit.models import AuditEntry
from proposals.models import ADOPTED, REJECTED, SUBMITTED, VOTING, Proposal, StatusChange
from tests.conftest import make_client
from tests.factories import (
    add_proposal,
    build_world,
    csrf_token,
    post_form,
    run_voix,
    sign_in,
    sign_out,
    t,
)
from tests.test_votes import (
    add_voters,
    cast_as,
    close_by_hand,
    manager_of,
    open_vote_on,
    open_vote_over,
    option_ids,
    receipt_of,
    status_of,
    tn,
)
from voix import crypto, db
from voix.forms import NUMBER_RANGE, TOO_SHORT, UNKNOWN_CHOICE, UserError
from voix.i18n import LOCAL_TIMEZONE
from voix.web import SESSION_COOKIE
from votes import ballot_box, closing, decisions, services
from votes.models import (
    Ballot,
    Decision,
    Participation,
    SealedBallot,
    Vote,
    VoteOption,
)
from votes.scales import FIVE, SCALES, SEVEN

UNGRADED = (
    "%(num)d proposal not graded will count as “%(grade)s”.",
    "%(num)d proposals not graded will count as “%(grade)s”.",
)
FOUND = "Found: the ballot with this receipt is in the ballot box, and it was counted."
NOT_FOUND = (
    "Not found: no ballot of this vote has this receipt. Check the code; if it is right, "
    "tell a facilitator or the association."
)
SHA = re.compile(r'<code class="sha" dir="ltr">([0-9a-f]{64})</code>')


async def proposals_of(world, n: int) -> list[int]:
    return [await add_proposal(world.table_a, f"Proposition numéro {i}") for i in range(n)]


async def stored_options(vote_id: int) -> list[dict[str, Any]]:
    rows = await (
        VoteOption.select(
            VoteOption.id,
            VoteOption.proposal,
            VoteOption.label,
            VoteOption.tally,
            VoteOption.rank,
            VoteOption.majority_grade,
            VoteOption.adopted,
        )
        .where(VoteOption.vote == vote_id)
        .order_by(VoteOption.position)
    )
    for row in rows:
        row["tally"] = json.loads(row["tally"]) if row["tally"] else None
    return rows


async def nothing_opened(proposals: list[int]) -> None:
    assert await Vote.count() == 0
    assert await VoteOption.count() == 0
    assert await StatusChange.count() == 0
    assert await AuditEntry.count().where(AuditEntry.action == "vote.opened") == 0
    assert [await status_of(p) for p in proposals] == [SUBMITTED] * len(proposals)


def day(offset: int) -> str:
    return (datetime.now(LOCAL_TIMEZONE) + timedelta(days=offset)).date().isoformat()


async def make_due(vote_id: int) -> None:
    """The vote's closing time has passed (nobody has closed it yet)."""
    await Vote.update({Vote.closes_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Vote.id == vote_id
    )


# Four voters grade three proposals A, B, C on seven grades (0 Excellent .. 6 À rejeter);
# None: left ungraded, counted as the lowest grade.
GRADED = [(0, 3, None), (1, 2, None), (2, 6, 1), (1, None, 5)]
# Best grade first, ungraded counted at the lowest: what closing must store.
TALLIES = [[1, 2, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 2], [0, 1, 0, 0, 0, 1, 2]]
MAJORITY_GRADES = [1, 6, 6]  # lower medians: Très bien, À rejeter, À rejeter
RANKS = [1, 2, 3]  # B before C: both "À rejeter", B's next grades (3 then 6) beat C's (5, 6)


async def graded_vote(client: AsyncClient, world, **form: Any) -> tuple[int, list[int], list[str]]:
    """The GRADED ballots cast on a new majority-judgment vote; (vote, proposals, receipts)."""
    proposals = await proposals_of(world, 3)
    voters = await add_voters(world, 4)  # members before the vote opens: its electorate
    vote_id = await open_vote_over(client, world, proposals, **form)
    options = await option_ids(vote_id)
    receipts = []
    for voter, grades in zip(voters, GRADED, strict=True):
        data = {f"grade-{o}": str(g) for o, g in zip(options, grades, strict=True) if g is not None}
        response = await cast_as(client, voter, vote_id, {**data, "confirm": "1"})
        receipts.append(receipt_of(response))
    return vote_id, proposals, receipts


# --- opening -----------------------------------------------------------------------------------


async def test_a_majority_judgment_vote_opens_over_several_proposals(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 3)
    await sign_in(client, world.users["facilitator_a"])
    chooser = await client.get("/tables/flamants-iris/votes/new")
    assert chooser.status_code == 200
    for proposal in proposals:
        assert f'name="proposals" value="{proposal}"' in chooser.text

    ordered = [proposals[2], proposals[0], proposals[1]]
    vote_id = await open_vote_over(
        client, world, ordered, scale=FIVE, adopt_rule="grade", adopt_grade="Bien", quorum="3"
    )
    vote = await Vote.select().where(Vote.id == vote_id).first()
    assert (vote["method"], vote["scale"], vote["proposal"]) == ("majority_judgment", FIVE, None)
    assert (vote["adopt_grade"], vote["adopt_top"], vote["quorum"]) == (1, None, 3)  # "Bien"
    assert vote["receipts_prove"] == "inclusion"
    options = await stored_options(vote_id)
    assert [o["proposal"] for o in options] == ordered  # the order chosen is the ballot's
    assert [o["label"] for o in options] == [f"Proposition numéro {i}" for i in (2, 0, 1)]
    assert [await status_of(p) for p in proposals] == [VOTING] * 3
    assert await AuditEntry.count().where(AuditEntry.action == "vote.opened") == 1

    await sign_in(client, world.users["resident_a"])
    page = await client.get(f"/votes/{vote_id}")
    for option in options:
        assert page.text.count(f'name="grade-{option["id"]}"') == len(SCALES[FIVE]) + 1  # + none
    assert t("Not graded") in page.text


async def test_an_approval_vote_opens_with_its_rule(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 3)
    vote_id = await open_vote_over(
        client, world, proposals, method="approval", adopt_rule="top", adopt_top="2"
    )
    vote = await Vote.select().where(Vote.id == vote_id).first()
    assert (vote["method"], vote["adopt_top"], vote["adopt_grade"]) == ("approval", 2, None)
    await sign_in(client, world.users["resident_a"])
    page = await client.get(f"/votes/{vote_id}")
    for option in await option_ids(vote_id):
        assert f'type="checkbox" name="approve" value="{option}"' in page.text
    assert 'name="grade-' not in page.text


INVALID_OPENINGS = [
    # (form, the field explained, message, its parameters)
    ({"count": 1}, "proposals", services.SEVERAL_PROPOSALS, {"min": 2, "max": 40}),
    ({"adopt_rule": "top", "adopt_top": "3"}, "adopt_top", services.TOP_TOO_LARGE, {}),
    ({"closes_on": day(-1), "closes_time": "10:00"}, "closes_on", services.CLOSES_IN_PAST, {}),
    (
        {"closes_on": day(100), "closes_time": "10:00"},
        "closes_on",
        services.CLOSES_TOO_LATE,
        {"days": 90},
    ),
    (
        {"method": "approval", "adopt_rule": "grade"},
        "adopt_rule",
        services.RULE_OF_OTHER_METHOD,
        {},
    ),
    ({"method": "borda"}, "method", UNKNOWN_CHOICE, {}),
    ({"method": "yes_no_abstain"}, "proposals", services.ONE_PROPOSAL, {}),
    ({"quorum": "0"}, "quorum", NUMBER_RANGE, {"min": 1, "max": 100_000}),
    ({"adopt_rule": "top", "adopt_top": "-1"}, "adopt_top", NUMBER_RANGE, {"min": 1, "max": 40}),
    ({"adopt_grade": "Génial"}, "adopt_grade", UNKNOWN_CHOICE, {}),
    ({"scale": "five", "adopt_grade": "Excellent"}, "adopt_grade", services.GRADE_NOT_IN_SCALE, {}),
    ({"receipts_prove": "everything"}, "receipts_prove", UNKNOWN_CHOICE, {}),
    ({"scale": "ten"}, "scale", UNKNOWN_CHOICE, {}),
    ({"question": "abc"}, "question", TOO_SHORT, {"min": 5}),
]


async def test_an_invalid_opening_is_explained_and_changes_nothing(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 3)
    await sign_in(client, world.users["facilitator_a"])
    for form, field, message, params in INVALID_OPENINGS:
        chosen = proposals[: form.get("count", 3)]
        data = {k: v for k, v in form.items() if k != "count"}
        response = await post_form(
            client,
            "/tables/flamants-iris/votes",
            {"question": "Que porter en premier ?", "proposals": chosen, **data},
        )
        assert response.status_code == 400, form
        assert f'id="f-{field}-error"' in response.text, form
        assert t(message, **params) in response.text, form
    await nothing_opened(proposals)


async def test_a_proposal_is_in_one_open_vote_at_a_time(client: AsyncClient) -> None:
    world = await build_world()
    p1, p2, p3 = await proposals_of(world, 3)
    theirs = await add_proposal(world.table_b, "Un terrain de foot aux Aygalades")
    vote_id = await open_vote_over(client, world, [p1, p2])

    for chosen in ([p2, p3], [p3, theirs]):
        refused = await post_form(
            client, "/tables/flamants-iris/votes", {"question": "Encore ?", "proposals": chosen}
        )
        assert refused.status_code == 409
        assert t(services.SOME_NOT_OPENABLE) in refused.text
    alone = await post_form(client, f"/proposals/{p1}/votes", {"question": "Adopter ?"})
    assert alone.status_code == 409
    assert t(services.NOT_OPENABLE) in alone.text
    assert [row["id"] for row in await Vote.select(Vote.id)] == [vote_id]
    assert await status_of(p3) == SUBMITTED
    assert await VoteOption.count() == 2


async def test_two_openings_over_the_same_proposal_at_once_one_wins(
    client: AsyncClient, app
) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    session, token = client.cookies[SESSION_COOKIE], await csrf_token(client)

    async def open_over(chosen: list[int]) -> int:
        async with make_client(app) as browser:
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            response = await browser.post(
                "/tables/flamants-iris/votes",
                data={"question": "Que porter ?", "proposals": chosen, "_csrf_token": token},
            )
        return response.status_code

    for _ in range(3):
        p1, p2, p3 = await proposals_of(world, 3)
        before = await Vote.count()
        statuses = await asyncio.gather(open_over([p1, p2]), open_over([p2, p3]))
        assert sorted(statuses) == [303, 409], statuses
        assert await Vote.count() == before + 1
        won = [p1, p2] if statuses[0] == 303 else [p2, p3]
        lost = p3 if statuses[0] == 303 else p1
        assert [await status_of(p) for p in won] == [VOTING, VOTING]
        assert await status_of(lost) == SUBMITTED
        assert await VoteOption.count().where(VoteOption.proposal == p2) == 1


async def test_options_are_snapshotted_when_the_vote_opens(client: AsyncClient) -> None:
    world = await build_world()
    p1, p2 = await proposals_of(world, 2)
    duplicate = await add_proposal(world.table_a, "Proposition numéro 1, en double")
    vote_id = await open_vote_over(client, world, [p1, p2])
    # Later edits and merges change the proposals, not what was put to the vote.
    await Proposal.update({Proposal.title: "Un titre réécrit"}).where(Proposal.id == p1)
    merged = await post_form(
        client, f"/proposals/{duplicate}/merge", {"into": str(p2)}, follow_redirects=False
    )
    assert merged.status_code == 303
    assert [o["label"] for o in await stored_options(vote_id)] == [
        "Proposition numéro 0",
        "Proposition numéro 1",
    ]
    page = await client.get(f"/votes/{vote_id}")
    assert "Proposition numéro 0" in page.text
    assert "Un titre réécrit" not in page.text

    await cast_as(client, world.users["resident_a"], vote_id, {"confirm": "1"})
    await close_by_hand(client, world, vote_id)
    box = json.loads((await client.get(f"/votes/{vote_id}/ballots.json")).content)
    assert [o["label"] for o in box["vote"]["options"]] == [
        "Proposition numéro 0",
        "Proposition numéro 1",
    ]


# --- casting -----------------------------------------------------------------------------------


async def test_ungraded_options_are_confirmed_before_anything_is_stored(
    client: AsyncClient,
) -> None:
    world = await build_world()
    vote_id = await open_vote_over(client, world, await proposals_of(world, 3))
    first, *_ = await option_ids(vote_id)
    await sign_in(client, world.users["resident_a"])
    asked = await post_form(client, f"/votes/{vote_id}/ballot", {f"grade-{first}": "2"})
    assert asked.status_code == 200
    assert tn(*UNGRADED, 2, grade=t("To reject")) in asked.text
    assert 'name="confirm" value="1"' in asked.text
    assert f'name="grade-{first}" value="2" checked' in asked.text  # kept as given
    assert not RECEIPT_SHOWN.search(asked.text)
    assert await Participation.count() == 0
    assert await SealedBallot.count() == 0

    sent = await post_form(
        client, f"/votes/{vote_id}/ballot", {f"grade-{first}": "2", "confirm": "1"}
    )
    assert sent.status_code == 200
    receipt = receipt_of(sent)
    assert await Participation.count() == 1
    sealed = (await SealedBallot.select(SealedBallot.sealed).first())["sealed"]
    assert json.loads(crypto.unseal(sealed, "ballot", str(vote_id))) == {
        "receipt": receipt,
        "marks": [[first, 2]],  # the others stay ungraded: no mark
    }


RECEIPT_SHOWN = re.compile(r'<strong class="code">')


async def test_a_fully_graded_ballot_needs_no_confirmation(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_over(client, world, await proposals_of(world, 2), scale=FIVE)
    grades = {f"grade-{o}": "4" for o in await option_ids(vote_id)}  # the lowest of five
    response = await cast_as(client, world.users["resident_a"], vote_id, grades)
    assert response.status_code == 200
    receipt_of(response)
    assert await Participation.count() == 1


async def test_a_bad_grade_is_refused_and_nothing_stored(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_over(client, world, await proposals_of(world, 2))
    other_vote = await open_vote_over(client, world, await proposals_of(world, 2))
    first, second = await option_ids(vote_id)
    foreign = (await option_ids(other_vote))[0]
    await sign_in(client, world.users["resident_a"])
    wrongs = (
        ({f"grade-{first}": "7"}, UNKNOWN_CHOICE),  # seven grades: 0 to 6
        ({f"grade-{first}": "-1"}, UNKNOWN_CHOICE),
        ({f"grade-{first}": "bien"}, UNKNOWN_CHOICE),
        ({f"grade-{first}": "1 OR 1=1"}, UNKNOWN_CHOICE),
        ({f"grade-{foreign}": "0"}, services.GRADE_UNKNOWN),  # an option of another vote
    )
    for confirm in ({}, {"confirm": "1"}):  # refused before the question of ungraded ones
        for wrong, message in wrongs:
            data = {f"grade-{second}": "0", **wrong, **confirm}
            response = await post_form(client, f"/votes/{vote_id}/ballot", data)
            assert response.status_code == 400, (wrong, confirm)
            assert t(message) in response.text, (wrong, confirm)
    assert await Participation.count() == 0
    assert await SealedBallot.count() == 0


async def test_approval_is_ticked_and_checked(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_over(client, world, await proposals_of(world, 3), method="approval")
    other_vote = await open_vote_over(
        client, world, await proposals_of(world, 2), method="approval"
    )
    a, _, c = await option_ids(vote_id)
    foreign = (await option_ids(other_vote))[0]
    await sign_in(client, world.users["resident_a"])
    for wrong in ([str(foreign)], [str(a), "abc"], [str(a), str(a), str(a), str(a)]):
        refused = await post_form(client, f"/votes/{vote_id}/ballot", {"approve": wrong})
        assert refused.status_code == 400, wrong
        assert t(services.GRADE_UNKNOWN) in refused.text
    assert await Participation.count() == 0

    ticked = await post_form(client, f"/votes/{vote_id}/ballot", {"approve": [str(a), str(c)]})
    receipt = receipt_of(ticked)
    sealed = (await SealedBallot.select(SealedBallot.sealed).first())["sealed"]
    assert json.loads(crypto.unseal(sealed, "ballot", str(vote_id)))["marks"] == [[a, 0], [c, 0]]
    none = await cast_as(client, world.users["facilitator_a"], vote_id, {})  # approving none
    assert receipt_of(none) != receipt
    assert await Participation.count() == 2


async def test_the_receipt_is_never_cached_nor_in_a_url(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_over(client, world, await proposals_of(world, 2))
    await sign_in(client, world.users["resident_a"])
    response = await post_form(client, f"/votes/{vote_id}/ballot", {"confirm": "1"})
    receipt = receipt_of(response)
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers
    assert receipt not in str(response.url)
    assert not re.search(rf'(?:href|action|src)="[^"]*{receipt}', response.text)
    again = await client.get(f"/votes/{vote_id}")
    assert receipt not in again.text  # shown once
    assert t("You have voted.") in again.text


# --- closing -----------------------------------------------------------------------------------


async def test_closing_stores_the_ranking_and_the_grade_rule_decides(client: AsyncClient) -> None:
    world = await build_world()
    vote_id, proposals, _ = await graded_vote(client, world)  # adopted from "Bien" (2) up
    await close_by_hand(client, world, vote_id)
    options = await stored_options(vote_id)
    assert [o["tally"] for o in options] == TALLIES
    assert [o["majority_grade"] for o in options] == MAJORITY_GRADES
    assert [o["rank"] for o in options] == RANKS
    assert [o["adopted"] for o in options] == [True, False, False]
    assert [await status_of(p) for p in proposals] == [ADOPTED, REJECTED, REJECTED]
    decided = await Decision.select(
        Decision.proposal, Decision.outcome, Decision.follows_vote, Decision.vote
    ).order_by(Decision.proposal)
    assert decided == [
        {"proposal": p, "outcome": outcome, "follows_vote": True, "vote": vote_id}
        for p, outcome in zip(proposals, (ADOPTED, REJECTED, REJECTED), strict=True)
    ]
    assert (await Vote.select(Vote.participants).first())["participants"] == 4

    page = await client.get(f"/votes/{vote_id}")
    assert tn("%(num)d person took part", "%(num)d people took part", 4) in page.text
    assert t("Very good") in page.text  # A's majority grade, in the ranking
    api = (await client.get(f"/api/v1/votes/{vote_id}")).json()
    assert [o["rank"] for o in api["options"]] == RANKS
    assert [o["majority_grade"] for o in api["options"]] == ["Très bien", "À rejeter", "À rejeter"]


async def test_approval_adopts_the_first_ones_of_the_ranking(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 3)
    voters = await add_voters(world, 3)
    vote_id = await open_vote_over(
        client, world, proposals, method="approval", adopt_rule="top", adopt_top="1"
    )
    a, b, c = await option_ids(vote_id)
    for voter, approved in zip(voters, ([a, b, c], [b, c], [b]), strict=True):
        receipt_of(await cast_as(client, voter, vote_id, {"approve": [str(o) for o in approved]}))
    await close_by_hand(client, world, vote_id)
    options = await stored_options(vote_id)
    assert [o["tally"] for o in options] == [[1], [3], [2]]
    assert [o["rank"] for o in options] == [3, 1, 2]
    assert [o["adopted"] for o in options] == [False, True, False]
    assert [await status_of(p) for p in proposals] == [REJECTED, ADOPTED, REJECTED]


async def test_yes_no_thresholds_and_quorum_decide(client: AsyncClient) -> None:
    world = await build_world()
    manager = await manager_of(world)
    voters = [await load_principal(await open_session(user)) for user in await add_voters(world, 5)]
    cases = [
        # (rule, ballots, adopted)
        ({"threshold": "two_thirds"}, ["yes", "yes", "no"], True),  # exactly two thirds
        ({"threshold": "two_thirds"}, ["yes", "yes", "yes", "no", "no"], False),  # three fifths
        ({"threshold": "three_fifths"}, ["yes", "yes", "yes", "no", "no"], True),
        ({"quorum": "3"}, ["yes", "yes"], False),  # quorum not met: nothing adopted
        ({"quorum": "3"}, ["yes", "abstain", "abstain"], True),  # abstentions count for it
    ]
    for rule, ballots, adopted in cases:
        proposal = await add_proposal(world.table_a)
        vote_id = await open_vote_on(client, world, proposal, **rule)  # the rule, by the form
        for voter, choice in zip(voters, ballots, strict=False):
            await services.cast(voter, world.table_a, vote_id, {"choice": choice})
        await closing.close_vote(manager, world.table_a, vote_id)
        (option,) = await stored_options(vote_id)
        counted = [ballots.count(choice) for choice in ("yes", "no", "abstain")]
        assert option["tally"] == counted, rule
        assert option["adopted"] is adopted, (rule, ballots)
        assert await status_of(proposal) == (ADOPTED if adopted else REJECTED), rule
        decision = await Decision.select(Decision.follows_vote).where(Decision.proposal == proposal)
        assert decision == [{"follows_vote": True}]
        if "quorum" in rule:
            page = await client.get(f"/votes/{vote_id}")
            met = t("quorum reached") if adopted else t("quorum not reached: nothing is adopted")
            assert met in page.text


async def test_a_quorum_not_met_adopts_nothing(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 2)
    voters = await add_voters(world, 2)
    vote_id = await open_vote_over(client, world, proposals, quorum="3")
    options = await option_ids(vote_id)
    for voter in voters:
        best = {f"grade-{o}": "0" for o in options}  # Excellent everywhere
        receipt_of(await cast_as(client, voter, vote_id, best))
    await close_by_hand(client, world, vote_id)
    stored = await stored_options(vote_id)
    assert [o["majority_grade"] for o in stored] == [0, 0]
    assert [o["adopted"] for o in stored] == [False, False]
    assert [await status_of(p) for p in proposals] == [REJECTED, REJECTED]
    page = await client.get(f"/votes/{vote_id}")
    assert t("quorum not reached: nothing is adopted") in page.text


# --- closing time ------------------------------------------------------------------------------


async def test_the_first_reader_after_the_closing_time_closes_the_vote(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    vote_id = await open_vote_on(client, world, proposal, closes_on=day(1), closes_time="20:00")
    closes_at = db.utc((await Vote.select(Vote.closes_at).first())["closes_at"])
    assert closes_at == datetime.fromisoformat(f"{day(1)}T20:00").replace(tzinfo=LOCAL_TIMEZONE)
    receipt_of(await cast_as(client, world.users["resident_a"], vote_id, {"choice": "yes"}))
    still_open = await client.get(f"/votes/{vote_id}")
    assert t("Results") not in still_open.text

    await make_due(vote_id)
    sign_out(client)
    page = await client.get(f"/votes/{vote_id}")  # anyone: here, someone not signed in
    assert page.status_code == 200
    assert t("Results") in page.text
    assert (await Vote.select(Vote.status).first())["status"] == "closed"
    entry = (
        await AuditEntry.select(AuditEntry.actor, AuditEntry.details)
        .where(AuditEntry.action == "vote.closed")
        .output(load_json=True)
    )
    assert [(e["actor"], e["details"]["by"]) for e in entry] == [(None, "closing time")]
    assert await Ballot.count() == 1
    assert await status_of(proposal) == ADOPTED


async def test_ballots_are_refused_after_the_closing_time(client: AsyncClient, monkeypatch) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await make_due(vote_id)

    # Even if nobody closes it first, the ballot's own transaction refuses it.
    async def nobody_closes(votes: Any) -> bool:
        return False

    monkeypatch.setattr(services, "_close_due_among", nobody_closes)
    resident = await load_principal(await open_session(world.users["resident_a"]))
    with pytest.raises(UserError) as refused:
        await services.cast(resident, world.table_a, vote_id, {"choice": "yes"})
    assert refused.value.message.msgid == services.VOTE_NOT_OPEN
    assert (await Vote.select(Vote.status).first())["status"] == "open"
    assert await Participation.count() == 0
    monkeypatch.undo()

    # Through the page, the ballot's request closes the vote first, then refuses the ballot.
    response = await cast_as(client, world.users["resident_a"], vote_id, {"choice": "yes"})
    assert response.status_code == 409
    assert t(services.VOTE_NOT_OPEN) in response.text
    assert (await Vote.select(Vote.status).first())["status"] == "closed"
    assert await Participation.count() == 0
    assert await Ballot.count() == 0


async def test_close_due_and_readers_at_once_close_the_vote_exactly_once(
    client: AsyncClient, app
) -> None:
    world = await build_world()
    vote_id, proposals, _ = await graded_vote(client, world)
    await make_due(vote_id)

    async def read() -> str:
        async with make_client(app) as reader:
            response = await reader.get(f"/votes/{vote_id}")
        assert response.status_code == 200
        return response.text

    *pages, closed_here = await asyncio.gather(
        read(), read(), read(), read(), read(), closing.close_due()
    )
    assert closed_here in ([], [vote_id])
    for page in pages:
        assert t("Results") in page  # every reader sees it closed, whoever closed it
    assert await AuditEntry.count().where(AuditEntry.action == "vote.closed") == 1
    assert await SealedBallot.count() == 0
    assert await Ballot.count() == await Participation.count() == 4
    stored = [json.loads(row["marks"]) for row in await Ballot.select(Ballot.marks)]
    assert sorted(stored, key=str) == sorted([list(ballot) for ballot in GRADED], key=str)
    assert [o["tally"] for o in await stored_options(vote_id)] == TALLIES
    assert await Decision.count() == 3
    decided = await StatusChange.count().where(StatusChange.from_status == VOTING)
    assert decided == 3
    assert [await status_of(p) for p in proposals] == [ADOPTED, REJECTED, REJECTED]
    assert await closing.close_due() == []


async def test_voix_close_due_closes_the_votes_past_their_time(client: AsyncClient) -> None:
    world = await build_world()
    due = await open_vote_on(client, world, await add_proposal(world.table_a))
    later = await open_vote_on(client, world, await add_proposal(world.table_a, "Autre chose"))
    receipt_of(await cast_as(client, world.users["resident_a"], due, {"choice": "no"}))
    await make_due(due)
    ran = await asyncio.to_thread(run_voix, "close-due")
    assert ran.returncode == 0, ran.stderr
    assert f"[{due}]" in ran.stdout
    rows = {row["id"]: row for row in await Vote.select(Vote.id, Vote.status, Vote.box_sha256)}
    assert rows[due]["status"] == "closed"
    assert len(rows[due]["box_sha256"]) == 64  # the fingerprint, computed once closed
    assert rows[later]["status"] == "open"
    assert await Ballot.count() == 1


# --- decisions ---------------------------------------------------------------------------------


async def test_deciding_without_a_vote_needs_a_reason_shown_publicly(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    for reason in ("", "   "):
        refused = await post_form(
            client, f"/proposals/{proposal}/decision", {"decision": "adopted", "reason": reason}
        )
        assert refused.status_code == 400
        assert t(decisions.REASON_NEEDED) in refused.text
    assert await status_of(proposal) == SUBMITTED
    assert await Decision.count() == 0
    assert await StatusChange.count() == 0

    reason = "Consensus de la réunion du 3 décembre"
    decided = await post_form(
        client,
        f"/proposals/{proposal}/decision",
        {"decision": "adopted", "reason": reason},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    assert await status_of(proposal) == ADOPTED
    row = await Decision.select(Decision.vote, Decision.follows_vote, Decision.reason).first()
    assert row == {"vote": None, "follows_vote": False, "reason": reason}
    sign_out(client)
    page = await client.get(f"/proposals/{proposal}")
    assert t("Decided by the table without a vote.") in page.text
    assert reason in page.text


async def test_overriding_the_result_needs_a_reason_shown_on_the_vote(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    vote_id = await open_vote_on(client, world, proposal)
    receipt_of(await cast_as(client, world.users["resident_a"], vote_id, {"choice": "yes"}))
    await close_by_hand(client, world, vote_id)
    assert await status_of(proposal) == ADOPTED

    refused = await post_form(client, f"/proposals/{proposal}/decision", {"decision": "rejected"})
    assert refused.status_code == 400
    assert t(decisions.REASON_NEEDED) in refused.text
    assert await status_of(proposal) == ADOPTED
    assert await Decision.count() == 1

    reason = "Le bailleur a déjà réparé les ascenseurs"
    decided = await post_form(
        client,
        f"/proposals/{proposal}/decision",
        {"decision": "rejected", "reason": reason},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    assert await status_of(proposal) == REJECTED
    latest = (await decisions.latest([proposal]))[proposal]
    assert (latest["follows_vote"], latest["reason"]) == (False, reason)
    entry = (
        await AuditEntry.select(AuditEntry.details)
        .where(AuditEntry.action == "proposal.decided")
        .output(load_json=True)
    )
    assert [e["details"]["against_vote"] for e in entry] == [True]
    sign_out(client)
    vote_page = await client.get(f"/votes/{vote_id}")
    assert t("Decided otherwise by the table") in vote_page.text
    assert reason in vote_page.text
    proposal_page = await client.get(f"/proposals/{proposal}")
    assert t("Decided by the table against the result of the vote.") in proposal_page.text


async def test_no_decision_while_a_vote_over_several_is_open(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 2)
    vote_id = await open_vote_over(client, world, proposals)
    for decision in ("adopted", "rejected"):
        refused = await post_form(
            client,
            f"/proposals/{proposals[0]}/decision",
            {"decision": decision, "reason": "La salle est d'accord"},
        )
        assert refused.status_code == 409
        assert t(decisions.VOTE_STILL_OPEN) in refused.text
    assert await status_of(proposals[0]) == VOTING
    assert await Decision.count() == 0
    page = await client.get(f"/proposals/{proposals[0]}")
    assert f'action="/proposals/{proposals[0]}/decision"' not in page.text
    assert (await Vote.select(Vote.status).where(Vote.id == vote_id).first())["status"] == "open"


# --- receipts and the public ballot box --------------------------------------------------------


async def test_a_receipt_is_found_once_the_vote_is_closed(client: AsyncClient) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    receipt = receipt_of(
        await cast_as(client, world.users["resident_a"], vote_id, {"choice": "no"})
    )

    async def check(code: str) -> str:
        response = await post_form(client, f"/votes/{vote_id}/receipt", {"receipt": code})
        assert response.status_code == 200
        return response.text

    while_open = await check(receipt)  # nothing is confirmed while the vote is open
    assert t(FOUND) not in while_open
    assert t(NOT_FOUND) not in while_open
    await close_by_hand(client, world, vote_id)
    sign_out(client)
    assert t(FOUND) in await check(receipt)
    spaced = f"{receipt[:4].lower()} {receipt[4:].lower()}"
    assert t(FOUND) in await check(spaced)  # as copied from paper
    # Read as Crockford meant: I and L for 1, O for 0, as people write them.
    misread = receipt.replace("1", "l").replace("0", "O")
    assert t(FOUND) in await check(f"{misread[:4]}-{misread[4:]}")
    wrong = "".join("0" if c != "0" else "1" for c in receipt)
    page = await check(wrong)
    assert t(NOT_FOUND) in page
    assert t(FOUND) not in page
    assert t(NOT_FOUND) in await check(receipt + "XYZ")  # not cut down to a receipt


async def test_nobody_voting_adopts_nothing_even_with_the_first_ones_rule(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 3)
    vote_id = await open_vote_over(
        client, world, proposals, method="approval", adopt_rule="top", adopt_top="1"
    )
    await close_by_hand(client, world, vote_id)
    options = await stored_options(vote_id)
    assert [o["rank"] for o in options] == [1, 1, 1]  # all tied, with nothing
    assert [o["adopted"] for o in options] == [False, False, False]
    assert [await status_of(p) for p in proposals] == [REJECTED] * 3


async def test_a_proposal_hidden_during_the_vote_is_not_graded_nor_adopted(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 2)
    voters = await add_voters(world, 2)
    vote_id = await open_vote_over(client, world, proposals, adopt_rule="top", adopt_top="1")
    kept, withdrawn = await option_ids(vote_id)
    await Proposal.update({Proposal.hidden_at: datetime.now(UTC)}).where(
        Proposal.id == proposals[1]
    )
    await sign_in(client, voters[0])
    page = (await client.get(f"/votes/{vote_id}")).text
    assert f'name="grade-{kept}"' in page
    assert f'name="grade-{withdrawn}"' not in page  # nothing to grade: it is withdrawn
    # Grading the one left is a whole ballot: no "ungraded" warning for the withdrawn one.
    receipt_of(await cast_as(client, voters[0], vote_id, {f"grade-{kept}": "5"}))
    # Someone who still sends a grade for it (an old page): counted, never adopted.
    receipt_of(
        await cast_as(client, voters[1], vote_id, {f"grade-{withdrawn}": "0", "confirm": "1"})
    )
    await close_by_hand(client, world, vote_id)
    options = await stored_options(vote_id)
    # The withdrawn one ranks first (an Excellent) but the first one adopted is the next.
    assert [o["rank"] for o in options] == [2, 1]
    assert [o["adopted"] for o in options] == [True, False]
    assert await status_of(proposals[1]) == REJECTED
    box = await client.get(f"/votes/{vote_id}/ballots.json")
    assert json.loads(box.content)["vote"]["withdrawn"] == [f"p{proposals[1]}"]
    recount = ballot_box.count(io.BytesIO(box.content)).result()
    assert recount.adopted == {f"p{proposals[0]}"}  # anyone's recount says the same


async def test_an_inclusion_only_box_lists_receipts_apart_and_is_fingerprinted(
    client: AsyncClient, tmp_path
) -> None:
    world = await build_world()
    vote_id, _, receipts = await graded_vote(client, world)
    assert (await client.get(f"/votes/{vote_id}/ballots.json")).status_code == 404  # open
    await close_by_hand(client, world, vote_id)

    first = await client.get(f"/votes/{vote_id}/ballots.json")
    second = await client.get(f"/votes/{vote_id}/ballots.json")
    assert first.status_code == 200
    assert first.content == second.content
    box = json.loads(first.content)
    assert box["receipts"] == sorted(receipts)
    assert len(box["ballots"]) == 4
    assert all(set(ballot) == {"choices"} for ballot in box["ballots"])
    page = await client.get(f"/votes/{vote_id}")
    shown = SHA.search(page.text)
    assert shown, "the results page shows the box's fingerprint"
    assert shown.group(1) == hashlib.sha256(first.content).hexdigest()

    output = tmp_path / "ballots.json"
    exported = await asyncio.to_thread(
        run_voix, "export", "ballots", str(vote_id), "--output", str(output)
    )
    assert exported.returncode == 0, exported.stderr
    assert output.read_bytes() == first.content
    assert shown.group(1) in exported.stdout
    nowhere = await asyncio.to_thread(
        run_voix, "export", "ballots", str(vote_id), "--output", str(tmp_path / "no" / "x.json")
    )
    assert nowhere.returncode == 2  # said plainly, not a traceback
    assert "cannot write" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


async def test_a_content_box_prints_each_receipt_beside_its_ballot(client: AsyncClient) -> None:
    world = await build_world()
    proposals = await proposals_of(world, 3)
    voters = await add_voters(world, 3)
    vote_id = await open_vote_over(
        client, world, proposals, method="approval", receipts_prove="content"
    )
    options = await option_ids(vote_id)
    chosen = {}
    for voter, approved in zip(voters, ([0, 1], [2], []), strict=True):
        form = {"approve": [str(options[i]) for i in approved]}
        chosen[receipt_of(await cast_as(client, voter, vote_id, form))] = [
            f"p{proposals[i]}" for i in approved
        ]
    await close_by_hand(client, world, vote_id)
    box = json.loads((await client.get(f"/votes/{vote_id}/ballots.json")).content)
    assert "receipts" not in box
    assert {ballot["receipt"]: ballot["choices"] for ballot in box["ballots"]} == chosen
    assert [b["receipt"] for b in box["ballots"]] == sorted(chosen)  # in receipts' order


async def test_a_recount_of_the_downloaded_box_agrees_with_the_stored_result(
    client: AsyncClient,
) -> None:
    world = await build_world()
    vote_id, proposals, _ = await graded_vote(client, world, adopt_rule="top", adopt_top="2")
    await close_by_hand(client, world, vote_id)
    downloaded = (await client.get(f"/votes/{vote_id}/ballots.json")).content
    count = ballot_box.count(io.BytesIO(downloaded))
    result = count.result()
    stored = {f"p{o['proposal']}": o for o in await stored_options(vote_id)}
    assert {placed.option: placed.rank for placed in result.ranking} == {
        key: option["rank"] for key, option in stored.items()
    }
    assert result.adopted == {key for key, option in stored.items() if option["adopted"]}
    assert result.adopted == {f"p{proposals[0]}", f"p{proposals[1]}"}  # the first two ranks
    printed = count.as_json()
    assert printed["participants"] == 4
    for entry in printed["ranking"]:
        option = stored[entry["option"]]
        assert entry["tally"] == option["tally"]
        assert entry["majority_grade"] == SCALES[SEVEN][option["majority_grade"]]
        assert entry["adopted"] is option["adopted"]


async def test_sealed_ballots_from_before_options_are_still_counted(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    vote_id = await open_vote_on(client, world, proposal)
    old_voters = await add_voters(world, 2, prefix="earlier")
    # Sealed as votes sealed them before they had options: {"receipt", "choice"}.
    for voter, receipt, choice in zip(
        old_voters, ("OLDYES01", "OLDNO002"), ("yes", "no"), strict=True
    ):
        await Participation.insert(
            Participation(
                vote=vote_id, user=voter, person=f"user:{voter}", cast_at=datetime.now(UTC)
            )
        )
        sealed = crypto.encrypt(json.dumps({"receipt": receipt, "choice": choice}), "ballot")
        await SealedBallot.insert(SealedBallot(vote=vote_id, sealed=sealed))
    new = receipt_of(await cast_as(client, world.users["resident_a"], vote_id, {"choice": "yes"}))
    await close_by_hand(client, world, vote_id)
    (option,) = await stored_options(vote_id)
    assert option["tally"] == [2, 1, 0]
    assert option["adopted"] is True
    assert sorted(row["receipt"] for row in await Ballot.select(Ballot.receipt)) == sorted(
        ["OLDYES01", "OLDNO002", new]
    )
    marks = await Ballot.select(Ballot.marks)
    assert sorted(m["marks"] for m in marks) == ["[0]", "[0]", "[1]"]
    assert await status_of(proposal) == ADOPTED
