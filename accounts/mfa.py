"""Second factor for those who manage tables: enrolment, verification, recovery, reset."""

from __future__ import annotations

from datetime import UTC, datetime

import segno

from accounts.models import RecoveryCode, User
from accounts.services import verify_password_async
from accounts.totp import (
    code_digits,
    generate_recovery_codes,
    generate_totp_secret,
    get_totp_provisioning_uri,
    normalise_code,
    verify_totp_code,
)
from audit import services as audit
from voix import crypto, db
from voix.forms import UserError
from voix.i18n import N_
from voix.permissions import Principal, signed_in

TOTP = "totp"
RECOVERY = "recovery"
WRONG_CODE = N_("This code is not right, has expired, or was already used.")
WRONG_PASSWORD = N_("This password is not right.")
ALREADY_ENABLED = N_("Two-step sign-in is already set up.")


async def enrolment(user_id: int, account_name: str) -> dict[str, str]:
    """The secret to enrol (created once, kept encrypted until confirmed) and its QR code."""
    row = (
        await User.select(User.totp_secret, User.totp_enabled_at).where(User.id == user_id).first()
    )
    if row is None or row["totp_enabled_at"] is not None:
        raise UserError(ALREADY_ENABLED)
    if row["totp_secret"]:
        secret = crypto.decrypt(row["totp_secret"], TOTP)
    else:
        secret = generate_totp_secret()
        await User.update({User.totp_secret: crypto.encrypt(secret, TOTP)}).where(
            User.id == user_id
        )
    uri = get_totp_provisioning_uri(secret, account_name)
    return {"secret": secret, "qr": segno.make(uri, error="m").svg_data_uri(scale=5, border=2)}


async def enable(who: Principal, code: str) -> list[str]:
    """Confirms enrolment with a first code; returns ten recovery codes, shown once."""
    user_id = signed_in(who)
    async with db.write_transaction():
        row = (
            await User.select(User.totp_secret, User.totp_enabled_at)
            .where(User.id == user_id)
            .first()
        )
        if row is not None and row["totp_enabled_at"] is not None:
            raise UserError(ALREADY_ENABLED)
        if row is None or not row["totp_secret"]:  # no key shown yet: nothing to confirm
            raise UserError(WRONG_CODE, status_code=400)
        step = verify_totp_code(crypto.decrypt(row["totp_secret"], TOTP), code, None)
        if step is None:
            raise UserError(WRONG_CODE, status_code=400)
        await User.update(
            {User.totp_enabled_at: datetime.now(UTC), User.totp_last_step: step}
        ).where(User.id == user_id)
        codes = generate_recovery_codes()
        await RecoveryCode.delete().where(RecoveryCode.user == user_id)
        await RecoveryCode.insert(
            *[
                RecoveryCode(user=user_id, code_hash=crypto.keyed_hash(normalise_code(c), RECOVERY))
                for c in codes
            ]
        )
        await audit.record(who, "totp.enabled", subject=f"user:{user_id}")
    return codes


async def check_code(user_id: int, code: str) -> bool:
    """A TOTP code (never twice) or an unused recovery code (then spent)."""
    if len(code_digits(code)) == 6 and len(code.strip()) <= 8:
        row = (
            await User.select(User.totp_secret, User.totp_last_step, User.totp_enabled_at)
            .where(User.id == user_id)
            .first()
        )
        if row is None or row["totp_enabled_at"] is None:
            return False
        step = verify_totp_code(
            crypto.decrypt(row["totp_secret"], TOTP), code, row["totp_last_step"]
        )
        if step is None:
            return False
        # Conditional: of two requests with the same code, on any worker, one wins.
        won = await (
            User.update({User.totp_last_step: step})
            .where(
                (User.id == user_id)
                & (User.totp_last_step.is_null() | (User.totp_last_step < step))
            )
            .returning(User.id)
        )
        return bool(won)
    cleaned = normalise_code(code)
    if len(cleaned) != 10:
        return False
    spent = await (
        RecoveryCode.update({RecoveryCode.used_at: datetime.now(UTC)})
        .where(
            (RecoveryCode.user == user_id)
            & (RecoveryCode.code_hash == crypto.keyed_hash(cleaned, RECOVERY))
            & RecoveryCode.used_at.is_null()
        )
        .returning(RecoveryCode.id)
    )
    return bool(spent)


async def reset(who: Principal, password: str, code: str) -> None:
    """Removes TOTP after re-authentication (password and a current code)."""
    user_id = signed_in(who)
    user = await User.select(User.password_hash).where(User.id == user_id).first()
    if user is None or not await verify_password_async(user["password_hash"], password):
        raise UserError(WRONG_PASSWORD, status_code=400)
    if not await check_code(user_id, code):
        raise UserError(WRONG_CODE, status_code=400)
    async with db.write_transaction():
        await User.update(
            {User.totp_secret: None, User.totp_enabled_at: None, User.totp_last_step: None}
        ).where(User.id == user_id)
        await RecoveryCode.delete().where(RecoveryCode.user == user_id)
        await audit.record(who, "totp.reset", subject=f"user:{user_id}")
