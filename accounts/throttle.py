"""Throttling of failed attempts, counted in the database so every worker sees the same count.

Keys name what is limited: "login:account:samira", "login:client:10.0.0.7", ... Each key
allows `limit` failures per window; the refusal says how long to wait.
"""

from __future__ import annotations

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


async def check(*limits: Limit) -> None:
    """Refuses (429) while any of the keys is over its limit."""
    now = datetime.now(UTC)
    rows = await Throttle.select(Throttle.key, Throttle.failures, Throttle.window_started_at).where(
        Throttle.key.is_in([limit.key for limit in limits])
    )
    by_key = {row["key"]: row for row in rows}
    waits = []
    for limit in limits:
        row = by_key.get(limit.key)
        if row and row["failures"] >= limit.failures:
            ends = utc(row["window_started_at"]) + limit.window
            if ends > now:
                waits.append(ends - now)
    if waits:
        raise Throttled(max(waits))


async def failed(*limits: Limit) -> None:
    """Counts one failure against each key, starting a new window when the last one ended."""
    now = datetime.now(UTC)
    for limit in limits:
        await Throttle.raw(
            "INSERT INTO throttle (key, failures, window_started_at) VALUES ({}, 1, {}) "
            "ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN throttle.window_started_at < {} THEN 1 "
            "ELSE throttle.failures + 1 END, "
            "window_started_at = CASE WHEN throttle.window_started_at < {} THEN {} "
            "ELSE throttle.window_started_at END",
            limit.key,
            now,
            now - limit.window,
            now - limit.window,
            now,
        )


async def succeeded(*limits: Limit) -> None:
    await Throttle.delete().where(Throttle.key.is_in([limit.key for limit in limits]))
