"""Which key this database's secrets were encrypted with, remembered as a key check value.

Started with another VOIX_SECRET_KEY (a restore, a typo, a lost .env), the site would run until
a vote closes or a facilitator signs in, then fail with "cannot decrypt". Checked at start-up
instead, it stops at once with a message that names the problem.
"""

from __future__ import annotations

import hmac

from audit.models import KeyCheck
from voix import crypto
from voix.db import utc
from voix.settings import ConfigurationError


class WrongKey(ConfigurationError):
    """VOIX_SECRET_KEY is not the key the database's secrets were encrypted with."""


async def check_key() -> None:
    """Remembers this key on first use; raises WrongKey when the database remembers another."""
    if not await KeyCheck.table_exists():
        return  # not migrated yet: `voix migrate` remembers the key
    # One row, id 1: workers starting together on a new database all insert it, one wins.
    await KeyCheck.insert(KeyCheck(id=1, value=crypto.key_check_value())).on_conflict(
        action="DO NOTHING"
    )
    if await key_matches() is False:
        stored = await KeyCheck.select(KeyCheck.at).where(KeyCheck.id == 1).first()
        since = f" (since {utc(stored['at']):%Y-%m-%d %H:%M} UTC)" if stored else ""
        raise WrongKey(
            f"VOIX_SECRET_KEY is not the key this database was used with{since}: with it, "
            "two-step sign-in secrets and the sealed ballots of open votes cannot be "
            "decrypted. Start with the database's own key (kept apart from its backups). "
            "Nothing was changed."
        )


async def key_matches() -> bool | None:
    """Whether VOIX_SECRET_KEY is the key the database remembers; None when it remembers none
    (a database from before key checks, or not yet started)."""
    if not await KeyCheck.table_exists():
        return None
    stored = await KeyCheck.select(KeyCheck.value).where(KeyCheck.id == 1).first()
    if stored is None:
        return None
    return hmac.compare_digest(stored["value"], crypto.key_check_value())
