"""Votes: opening, casting (once, anonymously), closing, counting, deciding.

Casting is one write transaction: a participation row (unique per vote and voter) and
a ballot row that shares no key, timestamp or order with it. A vote's state is checked
by a conditional UPDATE in the same transaction, which serialises against closing.
"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from litestar.exceptions import NotFoundException
from piccolo.query.functions.aggregate import Count

from proposals.models import ADOPTED, REJECTED, SUBMITTED, VOTING, Proposal
from tables.services import get_table_by_id, scope_of
from voix import db
from voix.forms import Form, UserError
from voix.i18n import N_
from voix.permissions import Principal, require
from votes.models import CHOICES, CLOSED, OPEN, Ballot, Participation, Vote

ALREADY_VOTED = N_("You have already voted. Each person votes once.")
VOTE_NOT_OPEN = N_("This vote is closed; ballots are no longer accepted.")
NOT_OPENABLE = N_("A vote can only be opened on a proposal that is still under discussion.")
ALREADY_CLOSED = N_("This vote is already closed.")
ALREADY_DECIDED = N_("This proposal has already been decided.")
VOTE_STILL_OPEN = N_("Close the vote before recording the decision.")
QUESTION_MAX = 200
# Crockford's base 32: no I, L, O or U to misread on paper.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_LENGTH = 8

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
        moved = (
            await Proposal.update({Proposal.status: VOTING})
            .where(
                (Proposal.id == proposal_id)
                & (Proposal.table == table["id"])
                & (Proposal.status == SUBMITTED)
            )
            .returning(Proposal.id)
        )
        if not moved:
            raise UserError(NOT_OPENABLE)
        inserted = await Vote.insert(
            Vote(table=table["id"], proposal=proposal_id, question=question, opened_by=who.user_id)
        ).returning(Vote.id)
    return int(inserted[0]["id"])


async def close_vote(who: Principal, table: dict[str, Any], vote_id: int) -> None:
    require(who, "votes.manage", scope_of(table))
    closed = (
        await Vote.update({Vote.status: CLOSED, Vote.closed_at: datetime.now(UTC)})
        .where((Vote.id == vote_id) & (Vote.table == table["id"]) & (Vote.status == OPEN))
        .returning(Vote.id)
    )
    if not closed:
        raise UserError(ALREADY_CLOSED)


async def cast(who: Principal, table: dict[str, Any], vote_id: int, choice: str) -> str:
    """Records one ballot and returns its receipt; a second ballot is refused."""
    require(who, "votes.cast", scope_of(table))
    form = Form({"choice": choice})
    choice = form.choice("choice", CHOICES)
    form.validate()
    receipt = new_receipt()
    async with db.write_transaction():
        # Takes the vote's row lock on PostgreSQL: a concurrent close waits, or wins.
        still_open = (
            await Vote.update({Vote.status: OPEN})
            .where((Vote.id == vote_id) & (Vote.table == table["id"]) & (Vote.status == OPEN))
            .returning(Vote.id)
        )
        if not still_open:
            raise UserError(VOTE_NOT_OPEN)
        first_time = (
            await Participation.insert(Participation(vote=vote_id, user=who.user_id))
            .on_conflict(action="DO NOTHING")
            .returning(Participation.id)
        )
        if not first_time:
            raise UserError(ALREADY_VOTED)
        await Ballot.insert(Ballot(vote=vote_id, receipt=receipt, choice=choice))
    return receipt


async def decide(who: Principal, table: dict[str, Any], proposal_id: int, adopted: bool) -> None:
    """The table's decision on a proposal, once any vote on it is closed."""
    require(who, "proposals.decide", scope_of(table))
    async with db.write_transaction():
        if await has_open_vote(proposal_id):
            raise UserError(VOTE_STILL_OPEN)
        changed = (
            await Proposal.update({Proposal.status: ADOPTED if adopted else REJECTED})
            .where(
                (Proposal.id == proposal_id)
                & (Proposal.table == table["id"])
                & Proposal.status.is_in([SUBMITTED, VOTING])
            )
            .returning(Proposal.id)
        )
        if not changed:
            raise UserError(ALREADY_DECIDED)
