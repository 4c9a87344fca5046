"""What a person did on the platform, as they read it: on their account page (the latest of each
kind, with a count), on the readable page of their data (every kind, a page at a time) and in
the download of their data (everything). One query per list, so the three always agree.

How anyone voted is not here: ballots are kept apart from voters (votes.models.Participation).
Every list is read a page at a time (LIMIT/OFFSET), newest first; only the download reads a
list whole, and only the person's own rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from accounts.models import LoginCard, Session, User
from meetings.models import Attendance
from proposals.models import Comment, Proposal, Report, Support
from tables.models import Membership
from voix.i18n import N_
from votes.models import Participation

# The account page shows this many of each list; "see all" pages show PAGE_SIZE at a time.
LATEST = 20
PAGE_SIZE = 50

# How one took part in a vote: never what one chose (the same words as the room's pages).
CHANNEL_LABELS = {
    "online": N_("online"),
    "tablet": N_("on the tablet"),
    "paper": N_("on paper"),
    "hands": N_("by show of hands"),
}
# How one's presence at a meeting was recorded (the same words as the attendance list).
ATTENDANCE_LABELS = {
    "qr": N_("QR code, on their phone"),
    "list": N_("Ticked by the facilitator"),
    "walk_in": N_("Walk-in, by name"),
}
ROLE_LABELS = {"resident": N_("Resident"), "facilitator": N_("Facilitator")}
VOTE_STATUS_LABELS = {"open": N_("Open"), "closed": N_("Closed")}

# The words of each field of the data, as the readable page names them.
FIELD_LABELS = {
    "login": N_("Login"),
    "display_name": N_("Name"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "language": N_("Language"),
    "created_at": N_("Date"),
    "consent_at": N_("Consent to the privacy notice"),
    "totp_enabled_at": N_("Two-step sign-in turned on"),
    "table": N_("Table"),
    "table_name": N_("Table"),
    "role": N_("Role"),
    "id": N_("Number"),
    "title": N_("Title"),
    "body": N_("Text"),
    "theme": N_("Theme"),
    "status": N_("Status"),
    "recorded_by": N_("Recorded for you by"),
    "consent_recorded_at": N_("Your consent recorded on"),
    "proposal": N_("Proposal"),
    "proposal_title": N_("Proposal"),
    "parent": N_("In reply to comment"),
    "hidden_at": N_("Hidden by moderation"),
    "hidden_reason": N_("Reason"),
    "target": N_("Reported"),
    "reason": N_("Reason"),
    "vote": N_("Vote number"),
    "question": N_("Question"),
    "vote_status": N_("State of the vote"),
    "channel": N_("How you took part"),
    "cast_at": N_("Date"),
    "meeting": N_("Meeting number"),
    "starts_at": N_("Meeting date"),
    "method": N_("Presence recorded by"),
    "checked_in_at": N_("Checked in at"),
    "issued_at": N_("Printed on"),
    "issued_by": N_("Printed by"),
    "revoked_at": N_("No longer valid since"),
    "last_seen_at": N_("Last used"),
    # Where a field says more in one list than in another: "<list>.<field>".
    "account.created_at": N_("Account created on"),
    "tables.created_at": N_("Member since"),
    "proposals.created_at": N_("Submitted on"),
    "comments.created_at": N_("Written on"),
    "supports.created_at": N_("Supported on"),
    "reports.created_at": N_("Reported on"),
    "sessions.created_at": N_("Opened on"),
}


Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Section:
    """One list of the data: its key in the download, its address, and its words."""

    key: str
    slug: str
    title: str  # msgid
    empty: str  # msgid
    read: Callable[[int, int | None, int], Awaitable[Rows]]
    count: Callable[[int], Awaitable[int]]


def _paged(query: Any, limit: int | None, offset: int) -> Any:
    return query if limit is None else query.limit(limit).offset(offset)


async def _memberships(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        Membership.select(
            Membership.table.slug.as_alias("table"),
            Membership.table.name.as_alias("table_name"),
            Membership.role,
            Membership.created_at,
        )
        .where(Membership.user == user_id)
        .order_by(Membership.created_at, ascending=False)
        .order_by(Membership.id, ascending=False),
        limit,
        offset,
    )


async def _proposals(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        Proposal.select(
            Proposal.id,
            Proposal.table.slug.as_alias("table"),
            Proposal.title,
            Proposal.body,
            Proposal.theme,
            Proposal.language,
            Proposal.status,
            Proposal.created_at,
            Proposal.recorded_by.display_name.as_alias("recorded_by"),
            Proposal.consent_recorded_at,
        )
        .where(Proposal.author == user_id)
        .order_by(Proposal.created_at, ascending=False)
        .order_by(Proposal.id, ascending=False),
        limit,
        offset,
    )


async def _comments(user_id: int, limit: int | None, offset: int) -> Rows:
    # Those a facilitator recorded for the person are theirs too, saying who recorded them and
    # when the person agreed.
    return await _paged(
        Comment.select(
            Comment.id,
            Comment.proposal,
            Comment.proposal.title.as_alias("proposal_title"),
            Comment.parent,
            Comment.body,
            Comment.created_at,
            Comment.hidden_at,
            Comment.hidden_reason,
            Comment.recorded_by.display_name.as_alias("recorded_by"),
            Comment.consent_recorded_at,
        )
        .where(Comment.author == user_id)
        .order_by(Comment.created_at, ascending=False)
        .order_by(Comment.id, ascending=False),
        limit,
        offset,
    )


async def _supports(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        Support.select(
            Support.proposal,
            Support.proposal.title.as_alias("title"),
            Support.proposal.status.as_alias("status"),
            Support.created_at,
            Support.recorded_by.display_name.as_alias("recorded_by"),
            Support.consent_recorded_at,
        )
        .where(Support.user == user_id)
        .order_by(Support.created_at, ascending=False)
        .order_by(Support.id, ascending=False),
        limit,
        offset,
    )


async def _reports(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        Report.select(Report.proposal, Report.target, Report.reason, Report.created_at)
        .where(Report.reporter == user_id)
        .order_by(Report.created_at, ascending=False)
        .order_by(Report.id, ascending=False),
        limit,
        offset,
    )


async def _votes(user_id: int, limit: int | None, offset: int) -> Rows:
    # The roll only: that the person took part, when, and through which channel. Nothing here
    # can lead to their ballot.
    return await _paged(
        Participation.select(
            Participation.vote.id.as_alias("vote"),
            Participation.vote.question.as_alias("question"),
            Participation.vote.status.as_alias("vote_status"),
            Participation.channel,
            Participation.cast_at,
        )
        .where(Participation.user == user_id)
        .order_by(Participation.cast_at, ascending=False)
        .order_by(Participation.id, ascending=False),
        limit,
        offset,
    )


async def _meetings(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        Attendance.select(
            Attendance.meeting.id.as_alias("meeting"),
            Attendance.meeting.title.as_alias("title"),
            Attendance.meeting.starts_at.as_alias("starts_at"),
            Attendance.method,
            Attendance.checked_in_at,
        )
        .where(Attendance.user == user_id)
        .order_by(Attendance.checked_in_at, ascending=False)
        .order_by(Attendance.id, ascending=False),
        limit,
        offset,
    )


async def _cards(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        LoginCard.select(
            LoginCard.issued_at,
            LoginCard.issued_by.display_name.as_alias("issued_by"),
            LoginCard.revoked_at,
            LoginCard.reason,
        )
        .where(LoginCard.user == user_id)
        .order_by(LoginCard.issued_at, ascending=False)
        .order_by(LoginCard.id, ascending=False),
        limit,
        offset,
    )


async def _sessions(user_id: int, limit: int | None, offset: int) -> Rows:
    return await _paged(
        Session.select(Session.created_at, Session.last_seen_at)
        .where(Session.user == user_id)
        .order_by(Session.created_at, ascending=False)
        .order_by(Session.id, ascending=False),
        limit,
        offset,
    )


def _counter(model: Any, column: Any) -> Callable[[int], Awaitable[int]]:
    async def count(user_id: int) -> int:
        return int(await model.count().where(column == user_id))

    return count


SECTIONS = (
    Section(
        "proposals",
        "proposals",
        N_("My proposals"),
        N_("You have not made a proposal yet."),
        _proposals,
        _counter(Proposal, Proposal.author),
    ),
    Section(
        "supports",
        "supports",
        N_("Proposals I support"),
        N_("You do not support any proposal yet."),
        _supports,
        _counter(Support, Support.user),
    ),
    Section(
        "comments",
        "comments",
        N_("My comments"),
        N_("You have not commented yet."),
        _comments,
        _counter(Comment, Comment.author),
    ),
    Section(
        "meetings_attended",
        "meetings",
        N_("Meetings I attended"),
        N_("No meeting has recorded your presence yet."),
        _meetings,
        _counter(Attendance, Attendance.user),
    ),
    Section(
        "votes_taken_part_in",
        "votes",
        N_("Votes I took part in"),
        N_("You have not taken part in a vote yet."),
        _votes,
        _counter(Participation, Participation.user),
    ),
    Section(
        "tables",
        "tables",
        N_("My tables"),
        N_("You are not a member of a table."),
        _memberships,
        _counter(Membership, Membership.user),
    ),
    Section(
        "reports",
        "reports",
        N_("My reports"),
        N_("You have not reported anything."),
        _reports,
        _counter(Report, Report.reporter),
    ),
    Section(
        "login_cards",
        "cards",
        N_("My login cards"),
        N_("No login card was printed for you."),
        _cards,
        _counter(LoginCard, LoginCard.user),
    ),
    Section(
        "sessions",
        "sessions",
        N_("My sessions"),
        N_("No session is open."),
        _sessions,
        _counter(Session, Session.user),
    ),
)
BY_SLUG = {section.slug: section for section in SECTIONS}
BY_KEY = {section.key: section for section in SECTIONS}
# What the account page lists, in this order.
ACTIVITY = ("proposals", "supports", "comments", "meetings_attended", "votes_taken_part_in")


@dataclass(frozen=True)
class Listing:
    """The first rows of one list, and how many there are in all."""

    section: Section
    items: Rows
    total: int

    @property
    def more(self) -> bool:
        return self.total > len(self.items)


async def latest(section: Section, user_id: int, limit: int = LATEST) -> Listing:
    """The newest `limit` rows; counted apart only when there may be more."""
    items = await section.read(user_id, limit, 0)
    total = len(items) if len(items) < limit else await section.count(user_id)
    return Listing(section, items, total)


async def page_of(section: Section, user_id: int, number: int) -> tuple[Rows, int]:
    """One page of a list, and how many rows the list has."""
    return (
        await section.read(user_id, PAGE_SIZE, (number - 1) * PAGE_SIZE),
        await section.count(user_id),
    )


async def everything(user_id: int) -> dict[str, Rows]:
    """Every list whole, for the download of one's data."""
    return {section.key: await section.read(user_id, None, 0) for section in SECTIONS}


async def account(user_id: int) -> dict[str, Any] | None:
    row = (
        await User.select(
            User.login,
            User.display_name,
            User.email,
            User.phone,
            User.language,
            User.created_at,
            User.consent_at,
            User.totp_enabled_at,
        )
        .where(User.id == user_id)
        .first()
    )
    return dict(row) if row else None


async def profile(user_id: int) -> dict[str, Any]:
    """What the account page needs of the person themself."""
    row = (
        await User.select(User.login, User.language, User.password_hash)
        .where(User.id == user_id)
        .first()
    )
    if row is None:
        return {"login": "", "language": "", "has_password": False}
    return {
        "login": row["login"],
        "language": row["language"],
        "has_password": bool(row["password_hash"]),
    }


async def set_language(user_id: int, code: str) -> None:
    await User.update({User.language: code}).where(User.id == user_id)
