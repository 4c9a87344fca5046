"""Throttling of failed attempts, counted in the database so every worker sees the same count.

Keys name what is limited: "login:account:samira", "login:client:10.0.0.7", ... Each key
allows `failures` attempts per window; the refusal says how long to wait. Every attempt is
counted before it is checked (`attempt`); what succeeds is given back (`forgive`, `reset`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.models import Throttle
from voix.db import utc
from voix.forms import UserError
from voix.i18n import N_

TOO_MANY = N_("Too many attempts. Please try again in %(minutes)d minutes.")


@dataclass(frozen=True)
class Limit:
    key: str
    failures: int
    window: timedelta = timedelta(minutes=15)


class Throttled(UserError):
    def __init__(self, retry_after: timedelta) -> None:
        minutes = max(1, math.ceil(retry_after.total_seconds() / 60))
        super().__init__(TOO_MANY, status_code=429, minutes=minutes)
        self.retry_after_seconds = max(1, math.ceil(retry_after.total_seconds()))


# The key column holds 200 characters; a typed login may be longer. Long keys keep their kind
# ("login:account") and become a digest, so they are still counted and hold no personal data.
KEY_MAX = 100


def storage_key(key: str) -> str:
    if len(key) <= KEY_MAX:
        return key
    kind = ":".join(key.split(":", 2)[:2])[:40]
    return f"{kind}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


async def attempt(*limits: Limit) -> None:
    """Counts this attempt against every key, then refuses (429) if any is over its limit.

    Counting first, in one statement per key, is what makes the limit hold under concurrency:
    of N simultaneous attempts, only the first `failures` see a count within the limit.
    An attempt that turns out well is given back with `forgive` or `reset`.
    """
    now = datetime.now(UTC)
    waits = []
    for limit in limits:
        rows = await Throttle.raw(
            "INSERT INTO throttle (key, failures, window_started_at) VALUES ({}, 1, {}) "
            "ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN throttle.window_started_at < {} THEN 1 "
            "ELSE throttle.failures + 1 END, "
            "window_started_at = CASE WHEN throttle.window_started_at < {} THEN {} "
            "ELSE throttle.window_started_at END "
            "RETURNING failures, window_started_at",
            storage_key(limit.key),
            now,
            now - limit.window,
            now - limit.window,
            now,
        )
        row = rows[0]
        if row["failures"] > limit.failures:
            waits.append(_as_utc(row["window_started_at"]) + limit.window - now)
    if waits:
        raise Throttled(max(waits))


def _as_utc(value: datetime | str) -> datetime:
    # SQLite hands RETURNING values back as text, PostgreSQL as aware datetimes.
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


async def forgive(*limits: Limit) -> None:
    """Takes back one counted attempt: it was not a failure (a right code, a valid form)."""
    for limit in limits:
        await Throttle.update({Throttle.failures: Throttle.failures - 1}).where(
            (Throttle.key == storage_key(limit.key)) & (Throttle.failures > 0)
        )


async def reset(*limits: Limit) -> None:
    """Forgets the keys: the account holder proved who they are."""
    await Throttle.delete().where(Throttle.key.is_in([storage_key(limit.key) for limit in limits]))
