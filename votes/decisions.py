"""The table's decision on a proposal: the vote's result, or the table's own reasoned choice.

Closing a vote decides the proposals it was on (votes.closing). A table may still decide
without a vote, or against its result (a consensus reached in the room), but only with a
written reason, shown publicly beside the result and kept in the audit journal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audit import services as audit
from proposals.discussion import record_change, tell_status
from proposals.models import ADOPTED, DISCUSSION, REJECTED, SUBMITTED, Proposal
from tables.services import scope_of
from voix import db
from voix.forms import Form, UserError
from voix.i18n import N_
from voix.permissions import Principal, require
from votes.models import Decision, VoteOption
from votes.services import has_open_vote

ALREADY_DECIDED = N_("This proposal has already been decided.")
VOTE_STILL_OPEN = N_("Close the vote before recording the decision.")
REASON_NEEDED = N_(
    "Say why the table decides this without a vote, or against the vote's result: "
    "the reason is shown publicly beside the decision."
)
DECISIONS = {"adopted": ADOPTED, "rejected": REJECTED}
REASON_MAX = 1000
# What a decision may follow: a proposal not yet decided, or a vote's outcome the table overrides.
DECIDABLE = (SUBMITTED, DISCUSSION, ADOPTED, REJECTED)


async def _vote_verdict(proposal_id: int) -> str | None:
    """What the last closed vote on this proposal decided, if any."""
    row = await (
        VoteOption.select(VoteOption.adopted)
        .where((VoteOption.proposal == proposal_id) & VoteOption.adopted.is_not_null())
        .order_by(VoteOption.vote, ascending=False)
        .first()
    )
    return None if row is None else (ADOPTED if row["adopted"] else REJECTED)


async def decide(
    who: Principal, table: dict[str, Any], proposal_id: int, data: dict[str, Any]
) -> None:
    require(who, "proposals.decide", scope_of(table))
    form = Form(data)
    decision = form.choice("decision", DECISIONS)
    reason = form.text("reason", max_length=REASON_MAX, required=False, multiline=True)
    form.validate()
    outcome = DECISIONS[decision]
    mine = (Proposal.id == proposal_id) & (Proposal.table == table["id"])
    async with db.write_transaction():
        # Lock the proposal's row first (opening a vote updates it too), so that the check for
        # an open vote below cannot miss one being opened at the same moment.
        locked = (
            await Proposal.update({Proposal.table: table["id"]})
            .where(mine)
            .returning(Proposal.status, Proposal.title)
        )
        # The open vote first: its proposals are "voting", which would read as "decided".
        if locked and await has_open_vote(proposal_id):
            raise UserError(VOTE_STILL_OPEN)
        if not locked or locked[0]["status"] not in DECIDABLE or locked[0]["status"] == outcome:
            raise UserError(ALREADY_DECIDED)
        verdict = await _vote_verdict(proposal_id)
        follows_vote = verdict == outcome
        if not follows_vote and not reason:
            form.error("reason", REASON_NEEDED)
            form.validate()
        before = locked[0]["status"]
        await Proposal.update({Proposal.status: outcome}).where(mine)
        await record_change(proposal_id, before, outcome, who, reason)
        await tell_status(who, table, proposal_id, locked[0]["title"], outcome)
        await Decision.insert(
            Decision(
                proposal=proposal_id,
                outcome=outcome,
                follows_vote=follows_vote,
                reason=reason,
                decided_by=who.user_id,
                decided_at=datetime.now(UTC),
            )
        )
        await audit.record(
            who,
            "proposal.decided",
            scope_of(table),
            subject=f"proposal:{proposal_id}",
            decision=decision,
            reason=reason,
            against_vote=verdict is not None and not follows_vote,
        )


async def latest(proposal_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The decision in force on each of these proposals, in one query."""
    found: dict[int, dict[str, Any]] = {}
    if proposal_ids:
        rows = await (
            Decision.select(
                Decision.proposal,
                Decision.vote,
                Decision.outcome,
                Decision.follows_vote,
                Decision.reason,
                Decision.decided_at,
                Decision.decided_by.display_name.as_alias("decided_by_name"),
            )
            .where(Decision.proposal.is_in(proposal_ids))
            .order_by(Decision.id)
        )
        for row in rows:
            row["decided_at"] = db.utc(row["decided_at"])
            found[row["proposal"]] = row
    return found
