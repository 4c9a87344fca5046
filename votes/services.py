"""Votes: opening, casting (once, secretly), closing, counting, deciding.

Casting is one write transaction: a participation row (unique per vote and voter) and a
sealed ballot (encrypted). Closing unseals every ballot of the vote at once, shuffled, so
the stored ballots share no key, time, order or transaction with who voted. A vote's
state is checked by a conditional UPDATE in the same transaction, which serialises
casting against closing.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from litestar.exceptions import NotFoundException
from piccolo.query.functions.aggregate import Count

from audit import services as audit
from proposals.discussion import record_change
from proposals.models import ADOPTED, DISCUSSION, REJECTED, SUBMITTED, VOTING, Proposal
from tables.models import Membership
from tables.services import get_table_by_id, scope_of
from voix import crypto, db
from voix.forms import Form, UserError
from voix.i18n import N_
from voix.permissions import Principal, require
from votes.models import CHOICES, CLOSED, OPEN, Ballot, Participation, SealedBallot, Vote

JOINED_AFTER_OPENING = N_(
    "Only people who were members of the table when the vote opened take part in it."
)
ALREADY_VOTED = N_("You have already voted. Each person votes once.")
VOTE_NOT_OPEN = N_("This vote is closed; ballots are no longer accepted.")
NOT_OPENABLE = N_("A vote can only be opened on a proposal that is still under discussion.")
ALREADY_CLOSED = N_("This vote is already closed.")
ALREADY_DECIDED = N_("This proposal has already been decided.")
VOTE_STILL_OPEN = N_("Close the vote before recording the decision.")
QUESTION_MAX = 200
DECISIONS = {"adopted": ADOPTED, "rejected": REJECTED}
# Crockford's base 32: no I, L, O or U to misread on paper.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_LENGTH = 8
BALLOT_SEAL = "ballot"

_COLUMNS = (
    Vote.id,
    Vote.table,
    Vote.proposal,
    Vote.question,
    Vote.method,
    Vote.status,
    Vote.opened_at,
    Vote.closed_at,
    Vote.proposal.title.as_alias("proposal_title"),
)


def new_receipt() -> str:
    return "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))


async def get(vote_id: int) -> dict[str, Any]:
    vote = await Vote.select(*_COLUMNS).where(Vote.id == vote_id).first()
    if vote is None:
        raise NotFoundException()
    return vote


async def get_with_table(vote_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    vote = await get(vote_id)
    return vote, await get_table_by_id(vote["table"])


async def for_table(table_id: int) -> list[dict[str, Any]]:
    return (
        await Vote.select(*_COLUMNS)
        .where(Vote.table == table_id)
        .order_by(Vote.opened_at, ascending=False)
    )


async def for_proposals(proposal_ids: list[int], status: str = CLOSED) -> list[dict[str, Any]]:
    """Votes on these proposals, newest first."""
    if not proposal_ids:
        return []
    return await (
        Vote.select(*_COLUMNS)
        .where(Vote.proposal.is_in(proposal_ids) & (Vote.status == status))
        .order_by(Vote.opened_at, ascending=False)
    )


async def for_proposal(proposal_id: int) -> list[dict[str, Any]]:
    return (
        await Vote.select(*_COLUMNS)
        .where(Vote.proposal == proposal_id)
        .order_by(Vote.opened_at, ascending=False)
    )


async def has_open_vote(proposal_id: int) -> bool:
    return await Vote.exists().where((Vote.proposal == proposal_id) & (Vote.status == OPEN))


async def tallies(vote_ids: list[int]) -> dict[int, Counter[str]]:
    """Counts for many votes in one query."""
    counts: dict[int, Counter[str]] = {vote_id: Counter() for vote_id in vote_ids}
    if vote_ids:
        rows = await (
            Ballot.select(Ballot.vote, Ballot.choice, Count(Ballot.id).as_alias("n"))
            .where(Ballot.vote.is_in(vote_ids))
            .group_by(Ballot.vote, Ballot.choice)
        )
        for row in rows:
            counts[row["vote"]][row["choice"]] = row["n"]
    return counts


async def turnout(vote_ids: list[int]) -> dict[int, int]:
    """How many have voted, open or closed, in one query: what a live count shows."""
    return await db.count_by(Participation.vote, vote_ids)


async def voted_in(user_id: int | None, vote_ids: list[int]) -> set[int]:
    if user_id is None or not vote_ids:
        return set()
    rows = await Participation.select(Participation.vote).where(
        (Participation.user == user_id) & Participation.vote.is_in(vote_ids)
    )
    return {row["vote"] for row in rows}


async def open_vote(who: Principal, table: dict[str, Any], proposal_id: int, question: str) -> int:
    require(who, "votes.manage", scope_of(table))
    form = Form({"question": question})
    question = form.text("question", max_length=QUESTION_MAX, min_length=5)
    form.validate()
    async with db.write_transaction():
        before = (
            await Proposal.select(Proposal.status)
            .where((Proposal.id == proposal_id) & (Proposal.table == table["id"]))
            .first()
        )
        moved = (
            await Proposal.update({Proposal.status: VOTING})
            .where(
                (Proposal.id == proposal_id)
                & (Proposal.table == table["id"])
                & Proposal.status.is_in([SUBMITTED, DISCUSSION])
                & Proposal.hidden_at.is_null()
            )
            .returning(Proposal.id)
        )
        if not moved or before is None:
            raise UserError(NOT_OPENABLE)
        await record_change(proposal_id, before["status"], VOTING, who, question)
        inserted = await Vote.insert(
            Vote(table=table["id"], proposal=proposal_id, question=question, opened_by=who.user_id)
        ).returning(Vote.id)
        await audit.record(who, "vote.opened", scope_of(table), subject=f"vote:{inserted[0]['id']}")
    return int(inserted[0]["id"])


async def close_vote(who: Principal, table: dict[str, Any], vote_id: int) -> None:
    """Closes the vote and unseals its ballots, shuffled, in one transaction."""
    require(who, "votes.manage", scope_of(table))
    async with db.write_transaction():
        closed = await (
            Vote.update({Vote.status: CLOSED, Vote.closed_at: datetime.now(UTC)})
            .where((Vote.id == vote_id) & (Vote.table == table["id"]) & (Vote.status == OPEN))
            .returning(Vote.id)
        )
        if not closed:
            raise UserError(ALREADY_CLOSED)
        await unseal(vote_id)
        await audit.record(who, "vote.closed", scope_of(table), subject=f"vote:{vote_id}")


async def unseal(vote_id: int) -> None:
    """Sealed ballots become ballots: decrypted, shuffled, written together, seals deleted.

    Runs inside the closing transaction, so every ballot of the vote carries that one
    transaction's id and an order that owes nothing to the order of voting.
    """
    sealed = await SealedBallot.select(SealedBallot.sealed).where(SealedBallot.vote == vote_id)
    ballots = [json.loads(crypto.decrypt(row["sealed"], BALLOT_SEAL)) for row in sealed]
    secrets.SystemRandom().shuffle(ballots)
    if ballots:
        await Ballot.insert(
            *[Ballot(vote=vote_id, receipt=b["receipt"], choice=b["choice"]) for b in ballots]
        )
    await SealedBallot.delete().where(SealedBallot.vote == vote_id)


async def cast(who: Principal, table: dict[str, Any], vote_id: int, choice: str) -> str:
    """Records one sealed ballot and returns its receipt; a second ballot is refused."""
    require(who, "votes.cast", scope_of(table))
    form = Form({"choice": choice})
    choice = form.choice("choice", CHOICES)
    form.validate()
    receipt = new_receipt()
    sealed = crypto.encrypt(json.dumps({"receipt": receipt, "choice": choice}), BALLOT_SEAL)
    async with db.write_transaction():
        # Takes the vote's row lock on PostgreSQL: a concurrent close waits, or wins.
        still_open = await (
            Vote.update({Vote.status: OPEN})
            .where((Vote.id == vote_id) & (Vote.table == table["id"]) & (Vote.status == OPEN))
            .returning(Vote.opened_at)
        )
        if not still_open:
            raise UserError(VOTE_NOT_OPEN)
        # The electorate is the table as it was when the vote opened.
        if not await Membership.exists().where(
            (Membership.user == who.user_id)
            & (Membership.table == table["id"])
            & (Membership.created_at <= still_open[0]["opened_at"])
        ):
            raise UserError(JOINED_AFTER_OPENING, status_code=403)
        first_time = await (
            Participation.insert(Participation(vote=vote_id, user=who.user_id))
            .on_conflict(action="DO NOTHING")
            .returning(Participation.id)
        )
        if not first_time:
            raise UserError(ALREADY_VOTED)
        await SealedBallot.insert(SealedBallot(vote=vote_id, sealed=sealed))
    return receipt


async def decide(who: Principal, table: dict[str, Any], proposal_id: int, decision: str) -> None:
    """The table's decision on a proposal, once any vote on it is closed."""
    require(who, "proposals.decide", scope_of(table))
    form = Form({"decision": decision})
    decision = form.choice("decision", DECISIONS)
    form.validate()
    mine = (Proposal.id == proposal_id) & (Proposal.table == table["id"])
    async with db.write_transaction():
        # Lock the proposal's row first (opening a vote updates it too), so that the check for
        # an open vote below cannot miss one being opened at the same moment.
        locked = (
            await Proposal.update({Proposal.table: table["id"]}).where(mine).returning(Proposal.id)
        )
        if not locked:
            raise UserError(ALREADY_DECIDED)
        if await has_open_vote(proposal_id):
            raise UserError(VOTE_STILL_OPEN)
        before = await Proposal.select(Proposal.status).where(mine).first()
        changed = await (
            Proposal.update({Proposal.status: DECISIONS[decision]})
            .where(mine & Proposal.status.is_in([SUBMITTED, DISCUSSION, VOTING]))
            .returning(Proposal.id)
        )
        if not changed or before is None:
            raise UserError(ALREADY_DECIDED)
        await record_change(proposal_id, before["status"], DECISIONS[decision], who)
        await audit.record(
            who,
            "proposal.decided",
            scope_of(table),
            subject=f"proposal:{proposal_id}",
            decision=decision,
        )
