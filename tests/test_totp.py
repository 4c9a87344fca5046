"""The TOTP and secret-keeping primitives."""

from __future__ import annotations

import pyotp
import pytest

from accounts.totp import (
    STEP_SECONDS,
    generate_recovery_codes,
    generate_totp_secret,
    get_totp_provisioning_uri,
    normalise_code,
    verify_totp_code,
)
from voix.crypto import decrypt, encrypt, keyed_hash

NOW = 1_790_000_000.0


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


def test_a_fresh_code_is_accepted_and_gives_its_step() -> None:
    secret = generate_totp_secret()
    assert verify_totp_code(secret, code_at(secret, NOW), None, now=NOW) == int(NOW // STEP_SECONDS)


def test_one_step_either_side_and_no_further() -> None:
    secret = generate_totp_secret()
    for offset in (-STEP_SECONDS, STEP_SECONDS):
        assert verify_totp_code(secret, code_at(secret, NOW + offset), None, now=NOW) is not None
    for offset in (-2 * STEP_SECONDS, 2 * STEP_SECONDS):
        assert verify_totp_code(secret, code_at(secret, NOW + offset), None, now=NOW) is None


def test_a_code_cannot_be_replayed() -> None:
    secret = generate_totp_secret()
    step = verify_totp_code(secret, code_at(secret, NOW), None, now=NOW)
    assert step is not None
    assert verify_totp_code(secret, code_at(secret, NOW), step, now=NOW) is None
    earlier = code_at(secret, NOW - STEP_SECONDS)
    assert verify_totp_code(secret, earlier, step, now=NOW) is None  # older than the last used
    later = code_at(secret, NOW + STEP_SECONDS)
    assert verify_totp_code(secret, later, step, now=NOW) == step + 1


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(typed: str) -> None:
    assert verify_totp_code(generate_totp_secret(), typed, None, now=NOW) is None


def test_codes_typed_with_spaces_are_read() -> None:
    secret = generate_totp_secret()
    code = code_at(secret, NOW)
    assert verify_totp_code(secret, f"{code[:3]} {code[3:]}", None, now=NOW) is not None


def test_provisioning_uri_names_the_issuer_and_account() -> None:
    uri = get_totp_provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "mehdi@avec-nous.example")
    assert uri.startswith("otpauth://totp/Voix%20des%20Quartiers:mehdi%40avec-nous.example?")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri


def test_recovery_codes_are_distinct_and_forgiving_to_type() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(len(normalise_code(code)) == 10 for code in codes)
    assert normalise_code(codes[0].lower().replace("-", " ")) == normalise_code(codes[0])
    assert normalise_code("o1l-i") == "0111"


def test_secrets_are_encrypted_per_purpose() -> None:
    token = encrypt("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "totp")
    assert "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" not in token
    assert decrypt(token, "totp") == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with pytest.raises(ValueError, match="cannot decrypt"):
        decrypt(token, "card")
    assert keyed_hash("ABCD", "card") != keyed_hash("ABCD", "recovery")
