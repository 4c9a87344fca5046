"""Login cards: how a resident with no e-mail (and little practice with passwords) signs in.

A facilitator registers the resident at the table and prints a card with a QR code and a
short code. The code is 80 random bits, single-purpose, and only its keyed hash is kept;
a new card revokes the previous one, and revoking a card ends the resident's sessions.

A card signs in without a password, so whoever prints it could use it: cards are only for
residents who have no password and manage nothing (`CardHolder.card_only`), checked when one is
printed and again at each sign-in. A reprint says why; its holder sees it on their account page.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from accounts.models import LoginCard, User
from accounts.services import close_all_sessions, create_user
from accounts.totp import normalise_code
from audit import services as audit
from tables.models import FACILITATOR, RESIDENT, Coordinator, Membership
from tables.services import NOT_A_MEMBER, follow_table, is_member, scope_of
from voix import crypto, db
from voix.forms import REQUIRED, Form, UserError
from voix.i18n import LANGUAGES, N_
from voix.permissions import CardHolder, Principal, can, require

CARD = "card"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16
CONSENT_REQUIRED = N_("The resident's consent to the privacy notice is needed to register them.")
PHONE_INVALID = N_("This phone number does not look right.")
NO_CARD_FOR_THEM = N_(
    "Login cards are only for residents registered at the table who have no password. "
    "Whoever has a password, or helps run a table, signs in with their password."
)
REASON_MAX = 200

# Prints a card: (code, name, language) -> the PDF. The code exists only in that file, so the
# card is printed *before* it is stored: if printing fails (a busy server), nothing changed and
# the previous card still works.
PrintCard = Callable[[str, str, str], Awaitable[bytes]]


def card_path(code: str) -> str:
    """Where the card's QR code points: the code rides in the fragment, which browsers never
    send, so it reaches no server log; a script on the page puts it in the form."""
    return f"/card#{code}"


def new_card_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def printed(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


async def register_resident(
    who: Principal, table: dict[str, Any], data: Mapping[str, Any], print_card: PrintCard
) -> tuple[int, bytes]:
    """A facilitator registers a resident in person; returns (user id, the card's PDF)."""
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
    code = new_card_code()
    card = await print_card(code, name, language)
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
        await follow_table(user.id, table["id"])
        await audit.record(who, "resident.registered", scope_of(table), subject=f"user:{user.id}")
        await _issue(who, table, user.id, code)
    return user.id, card


async def issue_card(
    who: Principal,
    table: dict[str, Any],
    user_id: int,
    data: Mapping[str, Any],
    print_card: PrintCard,
) -> bytes:
    """A new card for a card-only resident of this table (a lost card, a forgotten code), with
    the reason, which the journal keeps and the resident sees; returns the card's PDF."""
    scope = scope_of(table)
    require(who, "cards.print", scope)
    if not await is_member(user_id, table["id"]):
        raise UserError(NOT_A_MEMBER, status_code=404)
    form = Form(data)
    # A first card needs no reason; a new one says why the previous stops working.
    first = not await _ever_had_a_card(user_id)
    reason = form.text("reason", max_length=REASON_MAX, min_length=3, required=not first)
    holder = (await holders([user_id]))[user_id]
    if not can(who, "cards.print", scope, holder):
        raise UserError(NO_CARD_FOR_THEM, status_code=403)
    form.validate()
    user = await User.select(User.display_name, User.language).where(User.id == user_id).first()
    if user is None:
        raise UserError(NOT_A_MEMBER, status_code=404)
    code = new_card_code()
    card = await print_card(code, user["display_name"], user["language"])
    async with db.write_transaction():
        # Checked again where it is stored: the person may have changed while the card printed.
        if not can(who, "cards.print", scope, (await holders([user_id]))[user_id]):
            raise UserError(NO_CARD_FOR_THEM, status_code=403)
        if not reason and await _ever_had_a_card(user_id):  # printed by someone else meanwhile
            form.error("reason", REQUIRED)
            form.validate()
        await _issue(who, table, user_id, code, reason)
    return card


async def _ever_had_a_card(user_id: int) -> bool:
    return await LoginCard.exists().where(LoginCard.user == user_id)


async def card_of(table: dict[str, Any], user_id: int) -> dict[str, Any]:
    """One member of the table and their card, for the page that confirms printing or revoking
    it: their name, since when their valid card was issued (None without one), whether they
    ever had one, and whether they may hold one."""
    member = await (
        Membership.select(
            Membership.user.id.as_alias("id"),
            Membership.user.display_name.as_alias("display_name"),
        )
        .where((Membership.user == user_id) & (Membership.table == table["id"]))
        .first()
    )
    if member is None:
        raise UserError(NOT_A_MEMBER, status_code=404)
    valid = (
        await LoginCard.select(LoginCard.issued_at)
        .where((LoginCard.user == user_id) & LoginCard.revoked_at.is_null())
        .first()
    )
    member["card_issued_at"] = db.utc(valid["issued_at"]) if valid else None
    member["had_card"] = await _ever_had_a_card(user_id)
    member["holder"] = (await holders([user_id])).get(user_id)
    return member


async def _issue(
    who: Principal, table: dict[str, Any], user_id: int, code: str, reason: str = ""
) -> None:
    await _revoke(user_id)
    await LoginCard.insert(
        LoginCard(
            user=user_id,
            code_hash=crypto.keyed_hash(code, CARD),
            issued_by=who.user_id,
            reason=reason,
        )
    )
    if reason:
        await audit.record(
            who, "card.reprinted", scope_of(table), subject=f"user:{user_id}", reason=reason
        )
    else:
        await audit.record(who, "card.issued", scope_of(table), subject=f"user:{user_id}")


async def revoke_cards(who: Principal, table: dict[str, Any], user_id: int) -> None:
    require(who, "residents.register", scope_of(table))
    if not await is_member(user_id, table["id"]):
        raise UserError(NOT_A_MEMBER, status_code=404)
    async with db.write_transaction():
        if await _revoke(user_id):
            await audit.record(who, "card.revoked", scope_of(table), subject=f"user:{user_id}")


async def _revoke(user_id: int) -> bool:
    """Whether a card was revoked; only then are the sessions ended (someone without a card
    is not signed out everywhere by a click on this page)."""
    revoked = await (
        LoginCard.update({LoginCard.revoked_at: datetime.now(UTC)})
        .where((LoginCard.user == user_id) & LoginCard.revoked_at.is_null())
        .returning(LoginCard.id)
    )
    if revoked:
        await close_all_sessions(user_id)  # a revoked card works nowhere, not even where it did
    return bool(revoked)


async def holders(user_ids: list[int]) -> dict[int, CardHolder]:
    """What decides whether each of these people may hold a card, in three queries."""
    if not user_ids:
        return {}
    users = await User.select(User.id, User.is_admin, User.password_hash).where(
        User.id.is_in(user_ids)
    )
    facilitating = await Membership.select(Membership.user).where(
        Membership.user.is_in(user_ids) & (Membership.role == FACILITATOR)
    )
    coordinating = await Coordinator.select(Coordinator.user).where(
        Coordinator.user.is_in(user_ids)
    )
    managers = {row["user"] for row in facilitating} | {row["user"] for row in coordinating}
    return {
        row["id"]: CardHolder(
            user_id=row["id"],
            has_password=bool(row["password_hash"]),
            manages=bool(row["is_admin"]) or row["id"] in managers,
        )
        for row in users
    }


async def user_for_code(code: str) -> int | None:
    """The card's holder, if the card is valid and its holder still may hold one."""
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
    if card is None:
        return None
    holder = (await holders([int(card["user"])])).get(int(card["user"]))
    # Printed before they came to run a table or chose a password: it no longer signs them in.
    return holder.user_id if holder is not None and holder.card_only else None


async def residents_with_cards(table_id: int) -> list[dict[str, Any]]:
    """The table's members, whether each holds a valid card, ever had one and may hold one, in
    six queries."""
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
    eligible = await holders(ids)
    cards = (
        await LoginCard.select(LoginCard.user, LoginCard.issued_at).where(
            LoginCard.user.is_in(ids) & LoginCard.revoked_at.is_null()
        )
        if ids
        else []
    )
    issued = {card["user"]: card["issued_at"] for card in cards}
    # Whoever never had a card gets their first one, not a "new" one.
    ever = (
        await LoginCard.select(LoginCard.user).where(LoginCard.user.is_in(ids)).distinct()
        if ids
        else []
    )
    had = {card["user"] for card in ever}
    for member in members:
        member["card_issued_at"] = issued.get(member["id"])
        member["had_card"] = member["id"] in had
        member["holder"] = eligible.get(member["id"])
    return members
