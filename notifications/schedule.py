"""The day before: reminders of tomorrow's meetings and of the votes closing tomorrow.

A recurring job (every minute, on one replica at a time) looks, once Paris time is past 10:00,
at the meetings starting tomorrow (Paris date) and the open votes closing tomorrow, and emits
each one's event. The event's key makes it once-only: the job running again, twice at once, or
on two replicas adds nothing. A few queries whatever the number of meetings: the meetings, the
events already emitted, their agendas; the same for the votes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from meetings import services as meetings
from meetings.models import SCHEDULED, Meeting
from notifications import services as notify
from notifications.models import MEETING, TABLE, Event
from voix import db, jobs
from voix.db import utc
from voix.i18n import LOCAL_TIMEZONE
from votes.models import OPEN, Vote, VoteOption
from votes.services import tell_about_vote

SCHEDULE_JOB = "notifications.schedule"
SCHEDULE_EVERY_SECONDS = 60
REMINDER_FROM = time(10, 0)  # Paris time, the day before


def tomorrow(at: datetime) -> tuple[date, datetime, datetime] | None:
    """Tomorrow's Paris date and its bounds in UTC, once it is 10:00 in Paris; else None."""
    local = at.astimezone(LOCAL_TIMEZONE)
    if local.time() < REMINDER_FROM:
        return None
    day = local.date() + timedelta(days=1)
    start = datetime.combine(day, time(0, 0), tzinfo=LOCAL_TIMEZONE).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=LOCAL_TIMEZONE)
    return day, start, end.astimezone(UTC)


async def _emitted(keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return {row["key"] for row in await Event.select(Event.key).where(Event.key.is_in(keys))}


async def remind_meetings(at: datetime) -> list[int]:
    """Emits the reminder of each scheduled meeting starting tomorrow; the meetings reminded."""
    window = tomorrow(at)
    if window is None:
        return []
    day, start, end = window
    rows = await Meeting.select(
        Meeting.id,
        Meeting.table,
        Meeting.title,
        Meeting.starts_at,
        Meeting.place,
        Meeting.address,
        Meeting.table.name.as_alias("table_name"),
    ).where(
        (Meeting.status == SCHEDULED) & (Meeting.starts_at >= start) & (Meeting.starts_at < end)
    )
    keys = {row["id"]: f"meeting.reminder:{row['id']}:{day.isoformat()}" for row in rows}
    done = await _emitted(list(keys.values()))
    due = [row for row in rows if keys[row["id"]] not in done]
    if not due:
        return []
    agendas = await meetings.agendas([row["id"] for row in due])
    reminded = []
    for row in due:
        table = {"id": row["table"], "name": row["table_name"]}
        params: dict[str, Any] = meetings.event_params(table, row)
        # Items hidden by the moderation are left out (their title is a message, not text).
        params["agenda"] = [
            item["title"] for item in agendas[row["id"]] if isinstance(item["title"], str)
        ]
        async with db.write_transaction():
            emitted = await notify.emit(
                "meeting.reminder",
                keys[row["id"]],
                audience=notify.Audience(
                    follows=notify.followers((TABLE, row["table"]), (MEETING, row["id"])),
                    not_declined=row["id"],
                ),
                params=params,
                path=f"/meetings/{row['id']}",
                table_id=row["table"],
                urgent_until=utc(row["starts_at"]),
            )
        if emitted is not None:
            reminded.append(row["id"])
    return reminded


async def remind_votes(at: datetime) -> list[int]:
    """Emits "closing tomorrow" for each open vote whose closing time falls tomorrow."""
    window = tomorrow(at)
    if window is None:
        return []
    _day, start, end = window
    rows = await Vote.select(
        Vote.id,
        Vote.table,
        Vote.question,
        Vote.closes_at,
        Vote.table.name.as_alias("table_name"),
    ).where((Vote.status == OPEN) & (Vote.closes_at >= start) & (Vote.closes_at < end))
    keys = {row["id"]: f"vote.closing:{row['id']}" for row in rows}
    done = await _emitted(list(keys.values()))
    due = [row for row in rows if keys[row["id"]] not in done]
    if not due:
        return []
    proposals: dict[int, list[int]] = {row["id"]: [] for row in due}
    for option in await VoteOption.select(VoteOption.vote, VoteOption.proposal).where(
        VoteOption.vote.is_in(list(proposals))
    ):
        if option["proposal"] is not None:
            proposals[option["vote"]].append(option["proposal"])
    reminded = []
    for row in due:
        async with db.write_transaction():
            emitted = await tell_about_vote(
                "vote.closing",
                row["id"],
                {"id": row["table"], "name": row["table_name"]},
                proposals[row["id"]],
                {"question": row["question"], "closes_at": meetings.iso(row["closes_at"])},
            )
        if emitted is not None:
            reminded.append(row["id"])
    return reminded


async def run(at: datetime | None = None) -> dict[str, list[int]]:
    """One pass: what was reminded now (nothing when it had been already)."""
    at = at or notify.now()
    return {"meetings": await remind_meetings(at), "votes": await remind_votes(at)}


@jobs.handler(SCHEDULE_JOB, every=SCHEDULE_EVERY_SECONDS)
async def schedule_job(_payload: dict[str, Any]) -> None:
    """On one replica at a time: tomorrow's meetings and closings are told of the day before."""
    await run()
