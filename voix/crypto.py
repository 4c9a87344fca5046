"""Secrets at rest: encryption and keyed hashes derived from VOIX_SECRET_KEY.

Each purpose gets its own key (HKDF with the purpose as info), so a key used to hash login
card codes can never decrypt a TOTP secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voix.settings import get_settings


@cache
def _key(purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"voix-des-quartiers", info=purpose.encode()
    ).derive(get_settings().secret_key)


def encrypt(plaintext: str, purpose: str, *, undated: bool = False) -> str:
    """A Fernet token. Fernet writes the time of encryption in clear in each token; `undated`
    writes 0 instead, for what must not be matched with other rows by its time (ballots)."""
    fernet = Fernet(base64.urlsafe_b64encode(_key(purpose)))
    data = plaintext.encode()
    return (fernet.encrypt_at_time(data, 0) if undated else fernet.encrypt(data)).decode()


def decrypt(token: str, purpose: str, *, ttl: int | None = None) -> str:
    """Raises ValueError when the token was not made with this key and purpose, or (with
    `ttl`) was made more than `ttl` seconds ago."""
    try:
        fernet = Fernet(base64.urlsafe_b64encode(_key(purpose)))
        return fernet.decrypt(token.encode(), ttl=ttl).decode()
    except InvalidToken as wrong:
        raise ValueError("cannot decrypt: wrong key or purpose") from wrong


def keyed_hash(value: str, purpose: str) -> str:
    """For high-entropy codes (cards, recovery codes): a stolen database alone cannot test guesses."""
    return hmac.new(_key(purpose), value.encode(), hashlib.sha256).hexdigest()
