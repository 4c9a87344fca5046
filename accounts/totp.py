"""TOTP (RFC 6238) for facilitators, coordinators and administrators: small pure functions.

A code is accepted within one step either side of now, and only if its time step is later
than the last one accepted for that account: a code cannot be replayed, from this browser
or another.
"""

from __future__ import annotations

import secrets
import time
import unicodedata

import pyotp

ISSUER = "Voix des Quartiers"
STEP_SECONDS = 30
RECOVERY_CODE_COUNT = 10
# Crockford's base 32, grouped for reading aloud and typing on a phone.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def generate_totp_secret() -> str:
    return pyotp.random_base32()


def get_totp_provisioning_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)


def code_digits(typed: str) -> str:
    """The digits typed, as ASCII: an Arabic keyboard types ١٢٣٤٥٦ for 123456.

    Only decimal digits count: "²" says isdigit() but is no digit of a code (and int() fails on it).
    """
    return "".join(str(unicodedata.decimal(ch)) for ch in typed if ch.isdecimal())


def verify_totp_code(
    secret: str, code: str, last_used_step: int | None, now: float | None = None
) -> int | None:
    """The time step the code belongs to, or None if wrong, stale, or already used."""
    code = code_digits(code)
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            if last_used_step is not None and step <= last_used_step:
                return None  # replayed
            return step
    return None


def generate_recovery_codes() -> list[str]:
    return [
        "-".join("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(2))
        for _ in range(RECOVERY_CODE_COUNT)
    ]


def normalise_code(code: str) -> str:
    """Recovery and card codes as typed: any case, spaces or dashes, O for 0, I/L for 1."""
    cleaned = code.upper().replace("O", "0").replace("I", "1").replace("L", "1")
    return "".join(ch for ch in cleaned if ch in _ALPHABET)
