"""Password reset by e-mail, for those who gave an address.

The token carries the user id and an expiry, signed with a key that also covers the current
password hash: once the password changes, every earlier token is dead. No table needed: the
change itself is conditional on that hash, so of concurrent uses of one token only one wins.
"""

from __future__ import annotations

import hmac
import logging
import smtplib
import time

from accounts import mail
from accounts.models import User
from accounts.services import close_all_sessions, hash_password_async
from voix import crypto
from voix.forms import Form
from voix.i18n import N_, gettext

logger = logging.getLogger("voix.mail")

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


async def request_reset(email: str, site: str) -> None:
    """Sends a link if an account has this address; says nothing either way."""
    user = (
        await User.select(User.id, User.password_hash, User.language)
        .where(User.email == email.strip().lower())
        .first()
    )
    if user is None or not user["password_hash"]:
        return
    link = f"{site}/password/reset/{make_token(user['id'], user['password_hash'])}"
    try:
        await mail.send(
            email,
            gettext("Your Voix des Quartiers password"),
            gettext(
                "To choose a new password, open this link within an hour:\n\n%(link)s\n\n"
                "If you did not ask for it, ignore this message.",
                link=link,
            ),
        )
    except (OSError, smtplib.SMTPException) as failed:
        # The same answer as for an unknown address: a failing mail server must not tell
        # who has an account. The operator reads why in the log.
        logger.error("Password-reset e-mail not sent: %s: %s", type(failed).__name__, failed)


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
