"""Residents' rights: download everything held about oneself, and erase one's account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounts.models import LoginCard, Session, User
from accounts.services import close_all_sessions, verify_password_async
from audit import services as audit
from audit.models import AuditEntry
from meetings.models import Attendance
from proposals.models import Proposal
from tables.models import Coordinator, Membership
from voix import db
from voix.forms import UserError
from voix.i18n import N_
from voix.permissions import Principal, signed_in
from votes.models import Participation

WRONG_PASSWORD = N_("This password is not right.")
CONFIRM_ERASE = N_("Tick the box to confirm that you want your account erased.")
ERASED_NAME = "—"


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def export(who: Principal) -> dict[str, Any]:
    """What the platform holds about this person. Secrets and hashes are not personal data
    to hand out, and how they voted is not held against their name at all."""
    user_id = signed_in(who)
    user = (
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
    memberships = await Membership.select(
        Membership.table.slug.as_alias("table"), Membership.role, Membership.created_at
    ).where(Membership.user == user_id)
    proposals = await Proposal.select(
        Proposal.id,
        Proposal.table.slug.as_alias("table"),
        Proposal.title,
        Proposal.body,
        Proposal.theme,
        Proposal.language,
        Proposal.status,
        Proposal.created_at,
    ).where(Proposal.author == user_id)
    votes = await Participation.select(
        Participation.vote.id.as_alias("vote"),
        Participation.vote.question.as_alias("question"),
        Participation.cast_at,
    ).where(Participation.user == user_id)
    attended = await Attendance.select(
        Attendance.meeting.id.as_alias("meeting"),
        Attendance.meeting.title.as_alias("title"),
        Attendance.meeting.starts_at.as_alias("starts_at"),
        Attendance.method,
        Attendance.checked_in_at,
    ).where(Attendance.user == user_id)
    cards = await LoginCard.select(LoginCard.issued_at, LoginCard.revoked_at).where(
        LoginCard.user == user_id
    )
    sessions = await Session.select(Session.created_at, Session.last_seen_at).where(
        Session.user == user_id
    )
    return {
        "format": "voix-personal-data/1",
        "account": {k: _plain(v) for k, v in (user or {}).items()},
        "tables": [{k: _plain(v) for k, v in row.items()} for row in memberships],
        "proposals": [{k: _plain(v) for k, v in row.items()} for row in proposals],
        "votes_taken_part_in": [{k: _plain(v) for k, v in row.items()} for row in votes],
        "meetings_attended": [{k: _plain(v) for k, v in row.items()} for row in attended],
        "login_cards": [{k: _plain(v) for k, v in row.items()} for row in cards],
        "sessions": [{k: _plain(v) for k, v in row.items()} for row in sessions],
        "note": "Ballots are stored apart from voters: what you voted is not linked to you.",
    }


async def erase(who: Principal, password: str | None, confirmed: bool) -> None:
    """Personal data goes; proposals stay, signed "habitant·e"; ballots stay counted."""
    user_id = signed_in(who)
    if not confirmed:
        raise UserError(CONFIRM_ERASE, status_code=400)
    user = (
        await User.select(User.password_hash, User.consent_recorded_by)
        .where(User.id == user_id)
        .first()
    )
    # Residents registered with a card have no password: the signed-in session is their proof.
    if password is not None and (
        user is None or not await verify_password_async(user["password_hash"], password)
    ):
        raise UserError(WRONG_PASSWORD, status_code=400)
    async with db.write_transaction():
        await audit.record(who, "account.erased", subject="user:erased")
        # The journal keeps that an act happened, not who the erased person was.
        await AuditEntry.update({AuditEntry.actor_name: ERASED_NAME}).where(
            AuditEntry.actor == user_id
        )
        await close_all_sessions(user_id)
        await Coordinator.delete().where(Coordinator.user == user_id)
        # Foreign keys do the rest: proposals and participations keep their rows, without
        # the person (set null); memberships, cards, codes and sessions go (cascade).
        await User.delete().where(User.id == user_id)


async def has_password(user_id: int) -> bool:
    """Residents registered with a card have none: their hash is empty and matches nothing."""
    row = await User.select(User.password_hash).where(User.id == user_id).first()
    return row is not None and bool(row["password_hash"])
