"""Discussing proposals: supports, comments, reports, moderation, the status workflow, merging.

Every write checks its state in the same transaction as it changes it (a conditional UPDATE or
a unique index), so a retried or concurrent request changes nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audit import services as audit
from notifications import services as notify
from notifications.models import PROPOSAL as FOLLOWS_PROPOSAL
from notifications.models import Follow
from proposals.models import (
    ADOPTED,
    ANSWERED,
    DISCUSSION,
    DONE,
    MERGED,
    REFUSED,
    REJECTED,
    SUBMITTED,
    TRANSMITTED,
    VOTING,
    Comment,
    Proposal,
    Report,
    StatusChange,
    Support,
    Translation,
)
from tables.models import RESIDENT
from tables.services import is_member, scope_of
from voix import db
from voix.db import utc
from voix.forms import Form, Message, UserError
from voix.i18n import LANGUAGES, N_
from voix.permissions import Principal, require, signed_in

ALREADY_SUPPORTED = N_("You already support this proposal. Each person supports it once.")
NOT_SUPPORTED = N_("You do not support this proposal.")
REPLY_TO_REPLY = N_("Replies go one level deep: reply to the first comment instead.")
NO_SUCH_COMMENT = N_("This comment does not exist, or belongs to another proposal.")
ALREADY_REPORTED = N_("You have already reported this. The facilitators have been told.")
TRANSITION_FORBIDDEN = N_("A proposal cannot go from “%(current)s” to “%(target)s”.")
STATUS_CHANGED = N_("The status has changed in the meantime. Reload the page and try again.")
ALREADY_HIDDEN = N_("This is already hidden.")
NOT_HIDDEN = N_("This is not hidden.")
MERGE_ITSELF = N_("A proposal cannot be merged into itself.")
MERGE_OTHER_TABLE = N_("Choose a proposal of the same table.")
MERGE_CLOSED = N_("This proposal can no longer be merged.")
MERGE_TARGET_UNLISTED = N_(
    "The proposal chosen has itself been merged or hidden in the meantime. "
    "Reload the page and choose another one."
)
NOT_DISCUSSABLE = N_("This proposal is no longer open to discussion.")
NOT_A_RESIDENT = N_("Choose one of this table's residents.")
CONSENT_TO_SUPPORT = N_("Confirm that the resident asked you to record or withdraw their support.")
CONSENT_TO_COMMENT = N_(
    "Confirm that the resident agrees to this comment being published for them."
)
ALREADY_SUPPORTED_FOR = N_(
    "This resident already supports this proposal. Each person supports it once."
)
NOT_SUPPORTED_FOR = N_("This resident has no support recorded for them on this proposal.")

COMMENT_MAX = 2000
REASON_MAX = 300

# Who may move a proposal where by hand. Going to the vote is opening a vote; leaving it is
# recording the table's decision once the vote is closed (votes.services).
# Adopted and not retained are decisions: a vote's result, or votes.decisions with a reason.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    SUBMITTED: (DISCUSSION,),
    DISCUSSION: (),
    VOTING: (),
    ADOPTED: (TRANSMITTED,),
    REJECTED: (),
    TRANSMITTED: (ANSWERED,),
    ANSWERED: (DONE, REFUSED),
    DONE: (),
    REFUSED: (),
    MERGED: (),
}
STATUS_LABELS = {
    SUBMITTED: N_("Submitted"),
    DISCUSSION: N_("Under discussion"),
    VOTING: N_("Being voted on"),
    ADOPTED: N_("Adopted"),
    REJECTED: N_("Not retained"),
    TRANSMITTED: N_("Sent to the institution"),
    ANSWERED: N_("Answer received"),
    DONE: N_("Carried out"),
    REFUSED: N_("Refused by the institution"),
    MERGED: N_("Merged"),
}


def _now() -> datetime:
    return datetime.now(UTC)


async def record_change(
    proposal_id: int, before: str, after: str, who: Principal, reason: str = ""
) -> None:
    """One line of the history; inside the transaction that made the change."""
    await StatusChange.insert(
        StatusChange(
            proposal=proposal_id,
            from_status=before,
            to_status=after,
            actor=who.user_id,
            reason=reason[:REASON_MAX],
            at=_now(),
        )
    )


async def history(proposal_id: int) -> list[dict[str, Any]]:
    rows = await (
        StatusChange.select(
            StatusChange.from_status,
            StatusChange.to_status,
            StatusChange.reason,
            StatusChange.at,
            StatusChange.actor.display_name.as_alias("actor_name"),
        )
        .where(StatusChange.proposal == proposal_id)
        .order_by(StatusChange.at)
        .order_by(StatusChange.id)
    )
    for row in rows:
        row["at"] = utc(row["at"])
    return rows


async def change_status(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """A facilitator moves the proposal one allowed step, saying why."""
    require(who, "proposals.decide", scope_of(table))
    current = proposal["status"]
    form = Form(data)
    target = form.choice("status", TRANSITIONS)
    reason = form.text("reason", max_length=REASON_MAX, required=False)
    form.validate()
    if target not in TRANSITIONS.get(current, ()):
        raise UserError(
            TRANSITION_FORBIDDEN,
            status_code=400,
            current=Message(STATUS_LABELS[current]),
            target=Message(STATUS_LABELS[target]),
        )
    async with db.write_transaction():
        moved = await (
            Proposal.update({Proposal.status: target})
            .where((Proposal.id == proposal["id"]) & (Proposal.status == current))
            .returning(Proposal.id)
        )
        if not moved:
            raise UserError(STATUS_CHANGED)
        await record_change(proposal["id"], current, target, who, reason)
        await audit.record(
            who,
            "proposal.status",
            scope_of(table),
            subject=f"proposal:{proposal['id']}",
            status=target,
        )
        await tell_status(who, table, proposal["id"], proposal["title"], target)


async def tell_status(
    who: Principal, table: dict[str, Any], proposal_id: int, title: str, target: str
) -> None:
    """Tells the proposal's followers of its new status: inside the change's transaction,
    after its StatusChange row (a status moved by hand here, or decided after a vote)."""
    # The n-th move of its history: a proposal may come back to a status it had.
    moves = await StatusChange.count().where(StatusChange.proposal == proposal_id)
    await notify.emit(
        "proposal.status",
        f"proposal.status:{proposal_id}:{target}:{moves}",
        audience=notify.Audience(
            follows=notify.followers((FOLLOWS_PROPOSAL, proposal_id)),
            exclude=who.user_id,
        ),
        params={"table": table["name"], "title": title, "status": target},
        path=f"/proposals/{proposal_id}",
        table_id=table["id"],
    )


def _open_to_discussion(proposal: dict[str, Any]) -> None:
    if proposal["status"] == MERGED or proposal["hidden_at"]:
        raise UserError(NOT_DISCUSSABLE)


async def _resident_who_agreed(form: Form, table: dict[str, Any], consent_needed: str) -> int:
    """Whom a facilitator acts for: a resident of this table (a facilitator supports and
    comments in their own name), who said yes. Validates the whole form."""
    resident = form.integer("resident")
    if resident is not None and not await is_member(resident, table["id"], RESIDENT):
        form.error("resident", NOT_A_RESIDENT)
    if form.data.get("consent") != "yes":
        form.error("consent", consent_needed)
    form.validate()
    assert resident is not None  # noqa: S101 — required above
    return resident


# Supports


async def _add_support(
    proposal_id: int, user_id: int, already: str, recorded_by: int | None = None
) -> None:
    """In the caller's transaction. The unique index on (proposal, user) keeps one support per
    person however many requests race, whoever enters it; the count is then recounted."""
    now = _now()
    inserted = await (
        Support.insert(
            Support(
                proposal=proposal_id,
                user=user_id,
                created_at=now,
                recorded_by=recorded_by,
                consent_recorded_at=now if recorded_by is not None else None,
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(Support.id)
    )
    if not inserted:
        raise UserError(already)
    await recount_supports(proposal_id)
    await notify.follow(user_id, FOLLOWS_PROPOSAL, proposal_id)  # supporters hear of it


async def _remove_support(proposal_id: int, condition: Any, missing: str) -> None:
    removed = await (
        Support.delete().where((Support.proposal == proposal_id) & condition).returning(Support.id)
    )
    if not removed:
        raise UserError(missing)
    await recount_supports(proposal_id)


async def support(who: Principal, table: dict[str, Any], proposal: dict[str, Any]) -> None:
    require(who, "proposals.support", scope_of(table))
    _open_to_discussion(proposal)
    async with db.write_transaction():
        await _add_support(proposal["id"], signed_in(who), ALREADY_SUPPORTED)


async def withdraw_support(who: Principal, table: dict[str, Any], proposal: dict[str, Any]) -> None:
    """One's own support, given here or recorded for one by a facilitator."""
    require(who, "proposals.support", scope_of(table))
    async with db.write_transaction():
        await _remove_support(proposal["id"], Support.user == signed_in(who), NOT_SUPPORTED)


async def support_on_behalf(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """A facilitator records the support of a resident who asked for it (at a meeting, on the
    phone): it is the resident's own, counted once, with who recorded it and when they agreed."""
    scope = scope_of(table)
    require(who, "proposals.discuss_on_behalf", scope)
    _open_to_discussion(proposal)
    resident = await _resident_who_agreed(Form(data), table, CONSENT_TO_SUPPORT)
    async with db.write_transaction():
        await _add_support(proposal["id"], resident, ALREADY_SUPPORTED_FOR, who.user_id)
        await audit.record(
            who,
            "support.recorded_on_behalf",
            scope,
            subject=f"proposal:{proposal['id']}",
            resident=resident,
        )


async def withdraw_support_on_behalf(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """At the resident's request, a facilitator withdraws a support recorded for them. A support
    the resident gave themselves stays theirs alone to withdraw."""
    scope = scope_of(table)
    require(who, "proposals.discuss_on_behalf", scope)
    resident = await _resident_who_agreed(Form(data), table, CONSENT_TO_SUPPORT)
    # Marked by the consent time, which outlives the facilitator's account.
    recorded_for = (Support.user == resident) & Support.consent_recorded_at.is_not_null()
    async with db.write_transaction():
        await _remove_support(proposal["id"], recorded_for, NOT_SUPPORTED_FOR)
        await audit.record(
            who,
            "support.withdrawn_on_behalf",
            scope,
            subject=f"proposal:{proposal['id']}",
            resident=resident,
        )


async def recount_supports(proposal_id: int) -> None:
    """The list's support count, from the supports themselves, in the changing transaction."""
    count = await Support.count().where(Support.proposal == proposal_id)
    await Proposal.update({Proposal.supports: count}).where(Proposal.id == proposal_id)


async def support_counts(proposal_ids: list[int]) -> dict[int, int]:
    return await db.count_by(Support.proposal, proposal_ids)


async def supports(user_id: int | None, proposal_id: int) -> bool:
    if user_id is None:
        return False
    return await Support.exists().where(
        (Support.proposal == proposal_id) & (Support.user == user_id)
    )


# Comments


def _comment_fields(form: Form) -> tuple[str, int | None]:
    """The text, and the comment it replies to."""
    body = form.text("body", max_length=COMMENT_MAX, min_length=2, multiline=True)
    return body, form.integer("parent", required=False)


async def _check_parent(proposal: dict[str, Any], parent: int | None) -> None:
    """A reply answers a comment of the same proposal, not a reply: one level deep."""
    if parent is not None:
        row = await (
            Comment.select(Comment.parent)
            .where((Comment.id == parent) & (Comment.proposal == proposal["id"]))
            .first()
        )
        if row is None:
            raise UserError(NO_SUCH_COMMENT, status_code=400)
        if row["parent"] is not None:
            raise UserError(REPLY_TO_REPLY, status_code=400)


async def comment(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """A comment, or a reply to a comment (not to a reply)."""
    require(who, "proposals.comment", scope_of(table))
    _open_to_discussion(proposal)
    form = Form(data)
    body, parent = _comment_fields(form)
    form.validate()
    await _check_parent(proposal, parent)
    await Comment.insert(
        Comment(
            proposal=proposal["id"],
            parent=parent,
            author=signed_in(who),
            body=body,
            created_at=_now(),
        )
    )


async def comment_on_behalf(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """A facilitator writes down a resident's comment, with their agreement: it is signed with
    the resident's name and shows who recorded it."""
    scope = scope_of(table)
    require(who, "proposals.discuss_on_behalf", scope)
    _open_to_discussion(proposal)
    form = Form(data)
    body, parent = _comment_fields(form)  # read first: its errors come with the others
    resident = await _resident_who_agreed(form, table, CONSENT_TO_COMMENT)
    await _check_parent(proposal, parent)
    now = _now()
    async with db.write_transaction():
        inserted = await Comment.insert(
            Comment(
                proposal=proposal["id"],
                parent=parent,
                author=resident,
                body=body,
                created_at=now,
                recorded_by=who.user_id,
                consent_recorded_at=now,
            )
        ).returning(Comment.id)
        await audit.record(
            who,
            "comment.recorded_on_behalf",
            scope,
            subject=f"comment:{inserted[0]['id']}",
            proposal=proposal["id"],
            resident=resident,
        )


async def comments(proposal_id: int) -> list[dict[str, Any]]:
    """Top-level comments, oldest first, each with its replies."""
    rows = await (
        Comment.select(
            Comment.id,
            Comment.parent,
            Comment.body,
            Comment.created_at,
            Comment.hidden_at,
            Comment.hidden_reason,
            Comment.consent_recorded_at,
            Comment.author.display_name.as_alias("author_name"),
            Comment.recorded_by.display_name.as_alias("recorded_by_name"),
        )
        .where(Comment.proposal == proposal_id)
        .order_by(Comment.created_at)
        .order_by(Comment.id)
    )
    threads: list[dict[str, Any]] = []
    by_id: dict[int, dict[str, Any]] = {}
    for row in rows:
        row["created_at"] = utc(row["created_at"])
        row["replies"] = []
        if row["parent"] is None:
            threads.append(row)
            by_id[row["id"]] = row
        elif row["parent"] in by_id:
            by_id[row["parent"]]["replies"].append(row)
    return threads


# Reports and moderation


async def report(
    who: Principal,
    table: dict[str, Any],
    proposal: dict[str, Any],
    data: dict[str, Any],
) -> None:
    require(who, "proposals.report", scope_of(table))
    form = Form(data)
    reason = form.text("reason", max_length=REASON_MAX, required=False)
    comment_id = form.integer("comment", required=False)
    form.validate()
    if comment_id is not None and not await Comment.exists().where(
        (Comment.id == comment_id) & (Comment.proposal == proposal["id"])
    ):
        raise UserError(NO_SUCH_COMMENT, status_code=400)
    target = f"comment:{comment_id}" if comment_id else f"proposal:{proposal['id']}"
    inserted = await (
        Report.insert(
            Report(
                proposal=proposal["id"],
                comment=comment_id,
                target=target,
                reporter=signed_in(who),
                reason=reason,
                created_at=_now(),
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(Report.id)
    )
    if not inserted:
        raise UserError(ALREADY_REPORTED)


async def reports(proposal_id: int) -> list[dict[str, Any]]:
    rows = await (
        Report.select(Report.target, Report.reason, Report.created_at)
        .where(Report.proposal == proposal_id)
        .order_by(Report.created_at)
    )
    for row in rows:
        row["created_at"] = utc(row["created_at"])
    return rows


async def hide(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """Hides the proposal, or one of its comments, with a reason shown in its place. Audited."""
    require(who, "proposals.moderate", scope_of(table))
    form = Form(data)
    reason = form.text("reason", max_length=REASON_MAX, min_length=3)
    comment_id = form.integer("comment", required=False)
    unhide = data.get("action") == "show"
    if unhide:
        form.errors.pop("reason", None)
    form.validate()
    model: Any = Comment if comment_id else Proposal
    condition = (
        (Comment.id == comment_id) & (Comment.proposal == proposal["id"])
        if comment_id
        else Proposal.id == proposal["id"]
    )
    async with db.write_transaction():
        changed = await (
            model.update(
                {model.hidden_at: None, model.hidden_reason: ""}
                if unhide
                else {model.hidden_at: _now(), model.hidden_reason: reason}
            )
            .where(
                condition & (model.hidden_at.is_not_null() if unhide else model.hidden_at.is_null())
            )
            .returning(model.id)
        )
        if not changed:
            raise UserError(NOT_HIDDEN if unhide else ALREADY_HIDDEN)
        await audit.record(
            who,
            "moderation.shown" if unhide else "moderation.hidden",
            scope_of(table),
            subject=f"comment:{comment_id}" if comment_id else f"proposal:{proposal['id']}",
            reason=reason,
        )


# Merging


async def _lock_proposals(ids: list[int]) -> dict[int, dict[str, Any]]:
    """These proposals as they are now, their rows locked until the transaction ends.

    PostgreSQL locks them in id order, so two merges of the same pair wait for each other
    instead of deadlocking; SQLite's write transaction already runs one writer at a time.
    """
    query = (
        Proposal.select(Proposal.id, Proposal.table, Proposal.status, Proposal.hidden_at)
        .where(Proposal.id.is_in(ids))
        .order_by(Proposal.id)
    )
    if isinstance(db.engine(), db.Postgres):
        query = query.lock_rows()
    return {row["id"]: row for row in await query}


async def merge(
    who: Principal, table: dict[str, Any], duplicate: dict[str, Any], data: dict[str, Any]
) -> None:
    """Merges a duplicate into the proposal kept: supports and comments go over, the duplicate
    points to the one kept and leaves the lists."""
    require(who, "proposals.moderate", scope_of(table))
    form = Form(data)
    kept_id = form.integer("into")
    form.validate()
    assert kept_id is not None  # noqa: S101 — required above
    if kept_id == duplicate["id"]:
        raise UserError(MERGE_ITSELF, status_code=400)
    async with db.write_transaction():
        # Checked on the locked rows: merging A into B and B into A at once must not make
        # a cycle that takes both out of every list.
        rows = await _lock_proposals([duplicate["id"], kept_id])
        kept = rows.get(kept_id)
        if kept is None or kept["table"] != table["id"]:
            raise UserError(MERGE_OTHER_TABLE, status_code=400)
        if kept["status"] == MERGED or kept["hidden_at"]:  # merged: maybe into this duplicate
            raise UserError(MERGE_TARGET_UNLISTED)
        moved = await (
            Proposal.update({Proposal.status: MERGED, Proposal.merged_into: kept_id})
            .where(
                (Proposal.id == duplicate["id"]) & Proposal.status.is_in([SUBMITTED, DISCUSSION])
            )
            .returning(Proposal.id)
        )
        if not moved:
            raise UserError(MERGE_CLOSED)
        # Earlier duplicates of this one now point to the proposal kept: no chains to follow.
        await Proposal.update({Proposal.merged_into: kept_id}).where(
            Proposal.merged_into == duplicate["id"]
        )
        # A support recorded for a resident goes over still saying so.
        supporters = await Support.select(
            Support.user, Support.created_at, Support.recorded_by, Support.consent_recorded_at
        ).where(Support.proposal == duplicate["id"])
        if supporters:
            await Support.insert(
                *[Support(proposal=kept_id, **row) for row in supporters]
            ).on_conflict(action="DO NOTHING")
        await Support.delete().where(Support.proposal == duplicate["id"])
        # Who followed the duplicate (its author, its supporters) follows the one kept.
        await notify.follow_all(
            [
                row["user"]
                for row in await Follow.select(Follow.user).where(
                    (Follow.kind == FOLLOWS_PROPOSAL) & (Follow.target == duplicate["id"])
                )
            ],
            FOLLOWS_PROPOSAL,
            kept_id,
        )
        await recount_supports(kept_id)
        await recount_supports(duplicate["id"])
        await Comment.update({Comment.proposal: kept_id}).where(Comment.proposal == duplicate["id"])
        before = rows[duplicate["id"]]["status"]
        await record_change(duplicate["id"], before, MERGED, who, f"#{kept_id}")
        await audit.record(
            who,
            "proposal.merged",
            scope_of(table),
            subject=f"proposal:{duplicate['id']}",
            into=kept_id,
        )


TRANSCRIPTION_MAX = 4000


async def transcribe(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """A facilitator writes down what the voice note says."""
    require(who, "proposals.moderate", scope_of(table))
    form = Form(data)
    text = form.text("transcription", max_length=TRANSCRIPTION_MAX, multiline=True)
    form.validate()
    await Proposal.update({Proposal.transcription: text}).where(Proposal.id == proposal["id"])


SAME_LANGUAGE = N_("This is the language the proposal was written in; choose another one.")


async def translate(
    who: Principal, table: dict[str, Any], proposal: dict[str, Any], data: dict[str, Any]
) -> None:
    """A facilitator adds (or corrects) the proposal in another of the site's languages."""
    require(who, "proposals.moderate", scope_of(table))
    form = Form(data)
    language = form.choice("language", LANGUAGES)
    title = form.text("title", max_length=140, min_length=5)
    body = form.text("body", max_length=4000, min_length=10, multiline=True)
    if language == proposal["language"]:
        form.error("language", SAME_LANGUAGE)
    form.validate()
    async with db.write_transaction():
        await Translation.delete().where(
            (Translation.proposal == proposal["id"]) & (Translation.language == language)
        )
        await Translation.insert(
            Translation(
                proposal=proposal["id"],
                language=language,
                title=title,
                body=body,
                translated_by=who.user_id,
                updated_at=_now(),
            )
        )


async def translations(proposal_ids: list[int], language: str) -> dict[int, dict[str, Any]]:
    """The translations into `language` of these proposals, by proposal."""
    if not proposal_ids:
        return {}
    rows = await Translation.select(
        Translation.proposal, Translation.title, Translation.body
    ).where(Translation.proposal.is_in(proposal_ids) & (Translation.language == language))
    return {row["proposal"]: row for row in rows}
