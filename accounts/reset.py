"""Password reset by e-mail, for those who gave an address.

The token carries the user id and an expiry, signed with a key that also covers the current
password hash: once the password changes, every earlier token is dead. No table needed: the
change itself is conditional on that hash, so of concurrent uses of one token only one wins.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from accounts import mail
from accounts.models import User
from accounts.services import close_all_sessions, hash_password_async
from voix import crypto, i18n, jobs
from voix.forms import Form
from voix.i18n import N_, gettext

RESET = "password-reset"
VALID_SECONDS = 3600


def _signature(user_id: int, expires: int, password_hash: str) -> str:
    return crypto.keyed_hash(f"{user_id}.{expires}.{password_hash}", RESET)[:32]


def make_token(user_id: int, password_hash: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + VALID_SECONDS)
    return f"{user_id}.{expires}.{_signature(user_id, expires, password_hash)}"


async def user_for_token(token: str) -> int | None:
    holder = await _holder(token)
    return holder[0] if holder else None


async def _holder(token: str) -> tuple[int, str] | None:
    """The user the token was made for, and the password hash it was signed over."""
    try:
        user_id_text, expires_text, signature = token.split(".")
        user_id, expires = int(user_id_text), int(expires_text)
    except ValueError:
        return None
    if expires < time.time() or user_id > 2**31 - 1:
        return None
    row = await User.select(User.password_hash).where(User.id == user_id).first()
    if row is None or not row["password_hash"]:
        return None
    expected = _signature(user_id, expires, row["password_hash"])
    return (user_id, row["password_hash"]) if hmac.compare_digest(expected, signature) else None


RESET_MAIL = "accounts.reset_mail"


async def request_reset(email: str, site: str) -> None:
    """Sends a link if an account has this address; says nothing either way.

    The e-mail leaves from the job queue: the answer takes as long, and says the same, whether
    an account has this address or not and whether the mail server answers or not, and a
    failed sending is tried again. The job holds the account's id, never the link: no token
    sits in the database, nor in its backups. One waiting e-mail per account (its key)."""
    user = (
        await User.select(User.id, User.password_hash)
        .where(User.email == email.strip().lower())
        .first()
    )
    if user is None or not user["password_hash"]:
        return
    await jobs.enqueue(
        RESET_MAIL,
        {"user": user["id"], "site": site, "language": i18n.current_language.get()},
        key=f"reset-mail:{user['id']}",
    )


@jobs.handler(RESET_MAIL)
async def send_reset_mail(payload: dict[str, Any]) -> None:
    """The link, made now (valid an hour from now), in the language the person asked in."""
    user = (
        await User.select(User.id, User.email, User.password_hash)
        .where(User.id == payload["user"])
        .first()
    )
    if user is None or not user["password_hash"] or not user["email"]:
        return  # erased, or the address removed, since it was asked
    link = f"{payload['site']}/password/reset/{make_token(user['id'], user['password_hash'])}"
    asked_in = i18n.normalise(payload.get("language")) or i18n.DEFAULT_LANGUAGE
    language = i18n.current_language.set(asked_in)
    try:
        await mail.send(
            user["email"],
            gettext("Your Voix des Quartiers password"),
            gettext(
                "To choose a new password, open this link within an hour:\n\n%(link)s\n\n"
                "If you did not ask for it, ignore this message.",
                link=link,
            ),
        )
    finally:
        i18n.current_language.reset(language)


async def reset_password(token: str, data: dict[str, object]) -> int | None:
    """Sets the new password and signs out everywhere; None if the link is no good."""
    holder = await _holder(token)
    if holder is None:
        return None
    user_id, signed_over = holder
    form = Form(data)
    password = str(data.get("password") or "")
    if not 8 <= len(password) <= 200:
        form.error(
            "password",
            N_("The password needs between %(min)d and %(max)d characters."),
            min=8,
            max=200,
        )
    form.validate()
    new_hash = await hash_password_async(password)
    # Only if the hash is still the one the token was signed over: the first use kills the token.
    changed = await (
        User.update({User.password_hash: new_hash})
        .where((User.id == user_id) & (User.password_hash == signed_over))
        .returning(User.id)
    )
    if not changed:
        return None
    await close_all_sessions(user_id)
    return user_id
