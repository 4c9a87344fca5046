"""Login cards: how a resident with no e-mail (and little practice with passwords) signs in.

A facilitator registers the resident at the table and prints a card with a QR code and a
short code. The code is 80 random bits, single-purpose, and only its keyed hash is kept;
a new card revokes the previous one, and revoking a card ends the resident's sessions.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from accounts.models import LoginCard, User
from accounts.services import close_all_sessions, create_user
from accounts.totp import normalise_code
from audit import services as audit
from tables.models import RESIDENT, Membership
from tables.services import NOT_A_MEMBER, is_member, scope_of
from voix import crypto, db
from voix.forms import Form, UserError
from voix.i18n import LANGUAGES, N_
from voix.permissions import Principal, require

CARD = "card"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16
CONSENT_REQUIRED = N_("The resident's consent to the privacy notice is needed to register them.")
PHONE_INVALID = N_("This phone number does not look right.")


def new_card_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def printed(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


async def register_resident(
    who: Principal, table: dict[str, Any], data: Mapping[str, Any]
) -> tuple[int, str]:
    """A facilitator registers a resident in person; returns (user id, card code)."""
    require(who, "residents.register", scope_of(table))
    form = Form(data)
    name = form.text("display_name", max_length=80)
    language = form.choice("language", LANGUAGES)
    phone = form.text("phone", max_length=32, required=False) or None
    if phone and not re.fullmatch(r"\+?[0-9 .()-]{6,30}", phone):
        form.error("phone", PHONE_INVALID)
    email = form.email("email")
    if data.get("consent") != "yes":
        form.error("consent", CONSENT_REQUIRED)
    form.validate()
    async with db.write_transaction():
        # No password: the card is the way in, and an empty hash matches no password.
        user = await create_user(
            f"h-{secrets.token_hex(5)}", name, "", email=email, language=language
        )
        await User.update(
            {
                User.phone: phone,
                User.consent_at: datetime.now(UTC),
                User.consent_recorded_by: who.user_id,
            }
        ).where(User.id == user.id)
        await Membership.insert(Membership(user=user.id, table=table["id"], role=RESIDENT))
        await audit.record(who, "resident.registered", scope_of(table), subject=f"user:{user.id}")
        code = await _issue(who, table, user.id)
    return user.id, code


async def issue_card(who: Principal, table: dict[str, Any], user_id: int) -> str:
    """A new card for a resident of this table (a lost card, a forgotten code)."""
    require(who, "residents.register", scope_of(table))
    if not await is_member(user_id, table["id"]):
        raise UserError(NOT_A_MEMBER, status_code=404)
    async with db.write_transaction():
        return await _issue(who, table, user_id)


async def _issue(who: Principal, table: dict[str, Any], user_id: int) -> str:
    await _revoke(user_id)
    code = new_card_code()
    await LoginCard.insert(
        LoginCard(user=user_id, code_hash=crypto.keyed_hash(code, CARD), issued_by=who.user_id)
    )
    await audit.record(who, "card.issued", scope_of(table), subject=f"user:{user_id}")
    return code


async def revoke_cards(who: Principal, table: dict[str, Any], user_id: int) -> None:
    require(who, "residents.register", scope_of(table))
    if not await is_member(user_id, table["id"]):
        raise UserError(NOT_A_MEMBER, status_code=404)
    async with db.write_transaction():
        await _revoke(user_id)
        await audit.record(who, "card.revoked", scope_of(table), subject=f"user:{user_id}")


async def _revoke(user_id: int) -> None:
    await LoginCard.update({LoginCard.revoked_at: datetime.now(UTC)}).where(
        (LoginCard.user == user_id) & LoginCard.revoked_at.is_null()
    )
    await close_all_sessions(user_id)  # a revoked card works nowhere, not even where it did


async def user_for_code(code: str) -> int | None:
    cleaned = normalise_code(code)
    if len(cleaned) != CODE_LENGTH:
        return None
    card = (
        await LoginCard.select(LoginCard.user)
        .where(
            (LoginCard.code_hash == crypto.keyed_hash(cleaned, CARD))
            & LoginCard.revoked_at.is_null()
        )
        .first()
    )
    return int(card["user"]) if card else None


async def residents_with_cards(table_id: int) -> list[dict[str, Any]]:
    """The table's members and whether each holds a valid card, in two queries."""
    members = await (
        Membership.select(
            Membership.user.id.as_alias("id"),
            Membership.user.display_name.as_alias("display_name"),
            Membership.role,
            Membership.user.consent_at.as_alias("consent_at"),
        )
        .where(Membership.table == table_id)
        .order_by(Membership.user.display_name)
    )
    ids = [m["id"] for m in members]
    cards = (
        await LoginCard.select(LoginCard.user, LoginCard.issued_at).where(
            LoginCard.user.is_in(ids) & LoginCard.revoked_at.is_null()
        )
        if ids
        else []
    )
    issued = {card["user"]: card["issued_at"] for card in cards}
    for member in members:
        member["card_issued_at"] = issued.get(member["id"])
    return members
