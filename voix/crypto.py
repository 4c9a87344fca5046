"""Secrets at rest: encryption and keyed hashes derived from VOIX_SECRET_KEY.

Each purpose gets its own key (HKDF with the purpose as info), so a key used to hash login
card codes can never decrypt a TOTP secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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


AEAD_PREFIX = "a1."  # never a Fernet token's start (those begin "gAAAA"), so both kinds open
_NONCE_BYTES = 12


def seal(plaintext: str, purpose: str, associated: str) -> str:
    """AES-256-GCM under the purpose's key with a random 96-bit nonce: unlike a Fernet token,
    nothing in clear but the nonce, so no time of sealing. `associated` is authenticated, not
    stored: a token opens only with the same value (a ballot only for its own vote). Random
    nonces stay safe far beyond the 2^32 messages per key that GCM allows with them."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_key(purpose)).encrypt(nonce, plaintext.encode(), associated.encode())
    return AEAD_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str, purpose: str, associated: str) -> str:
    """What `seal` sealed; a Fernet token from before (`encrypt`) opens too. Raises ValueError
    when the token was not made with this key, purpose and associated value."""
    if not token.startswith(AEAD_PREFIX):
        return decrypt(token, purpose)
    try:
        raw = base64.urlsafe_b64decode(token.removeprefix(AEAD_PREFIX))
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return AESGCM(_key(purpose)).decrypt(nonce, sealed, associated.encode()).decode()
    except (InvalidTag, ValueError) as wrong:
        raise ValueError("cannot decrypt: wrong key, purpose or associated data") from wrong


KEY_CHECK = "key-check"


def key_check_value() -> str:
    """What only this VOIX_SECRET_KEY gives: stored once in the database and compared at
    start-up, it tells a wrong key apart from damaged data, and reveals nothing of the key."""
    return keyed_hash("voix-des-quartiers key check", KEY_CHECK)
