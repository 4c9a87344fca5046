"""The day before (issue 16): tomorrow's meetings are reminded, and the votes closing tomorrow
announced, once Paris time is 10:00; once only, however often or concurrently the job runs.
The clock is moved by patching notifications.services.now."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from meetings.models import CANCELLED, AgendaItem, Meeting
from notifications import schedule
from notifications import services as notify
from notifications.models import PROPOSAL, TABLE, Event, Notification
from proposals.models import Proposal
from tests.factories import add_proposal, add_user, build_world
from tests.test_votes import open_vote_on
from voix import db, jobs
from voix.i18n import LOCAL_TIMEZONE
from votes.models import Vote

# The meetings' day: far enough ahead that the forms' "in the future" checks hold.
DAY = datetime.now(LOCAL_TIMEZONE).date() + timedelta(days=10)


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TIMEZONE)


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(notify, "now", lambda: moment.astimezone(UTC))


async def add_meeting(table: dict[str, Any], starts: datetime, **fields: Any) -> int:
    rows = await Meeting.insert(
        Meeting(
            table=table["id"],
            title=fields.pop("title", "Réunion de la table"),
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            place="Centre social Flamants-Iris",
            address="Avenue Ansaldi, 13014 Marseille",
            languages="fr ar",
            **fields,
        )
    ).returning(Meeting.id)
    return int(rows[0]["id"])


async def events(kind: str) -> list[dict[str, Any]]:
    rows = await Event.select().where(Event.kind == kind).order_by(Event.id)
    for row in rows:
        row["params"] = json.loads(row["params"])
    return rows


async def reached(event_id: int) -> set[int]:
    rows = await Notification.select(Notification.user).where(Notification.event == event_id)
    return {row["user"] for row in rows}


async def test_the_job_is_declared_to_run_every_minute() -> None:
    assert jobs.HANDLERS[schedule.SCHEDULE_JOB] is schedule.schedule_job
    assert jobs.RECURRING[schedule.SCHEDULE_JOB] == 60


async def test_a_meeting_is_reminded_the_day_before_from_ten_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await build_world()
    table = world.table_a
    resident, facilitator = world.users["resident_a"], world.users["facilitator_a"]
    declined = await add_user("empechee")
    coming = await add_user("viendra")  # follows the meeting only, by saying they will come
    for user in (resident, facilitator, declined):
        await notify.follow(user, TABLE, table["id"])
    meeting = await add_meeting(table, paris(DAY, 18, 30))
    later = await add_meeting(table, paris(DAY + timedelta(days=1), 18, 30))
    await add_meeting(table, paris(DAY, 14), status=CANCELLED)
    hidden = await add_proposal(table, "Une proposition masquée", hidden_at=datetime.now(UTC))
    await AgendaItem.insert(
        AgendaItem(meeting=meeting, position=1, title="Accueil"),
        AgendaItem(meeting=meeting, position=2, title="Une proposition masquée", proposal=hidden),
        AgendaItem(meeting=meeting, position=3, title="Les ascenseurs de la tour G"),
    )
    async with db.write_transaction():
        await notify.set_rsvp(meeting, declined, False, recorded_by=None)
        await notify.set_rsvp(meeting, coming, True, recorded_by=facilitator)

    at(monkeypatch, paris(DAY - timedelta(days=2), 23, 59))
    assert await schedule.run() == {"meetings": [], "votes": []}
    at(monkeypatch, paris(DAY - timedelta(days=1), 9, 59))
    assert await schedule.run() == {"meetings": [], "votes": []}
    assert await events("meeting.reminder") == []

    at(monkeypatch, paris(DAY - timedelta(days=1), 10, 0))
    # Two runs at once (two replicas, or the job and a retry): one reminder.
    first, second = await asyncio.gather(schedule.run(), schedule.run())
    assert sorted(first["meetings"] + second["meetings"]) == [meeting]
    at(monkeypatch, paris(DAY - timedelta(days=1), 22, 0))
    assert await schedule.run() == {"meetings": [], "votes": []}
    (reminder,) = await events("meeting.reminder")
    assert reminder["key"] == f"meeting.reminder:{meeting}:{DAY.isoformat()}"
    assert reminder["path"] == f"/meetings/{meeting}"
    assert reminder["table"] == table["id"]
    params = reminder["params"]
    assert params["agenda"] == ["Accueil", "Les ascenseurs de la tour G"]
    assert params["place"] == "Centre social Flamants-Iris"
    assert params["address"] == "Avenue Ansaldi, 13014 Marseille"
    assert params["table"] == table["name"]
    assert datetime.fromisoformat(params["starts_at"]) == paris(DAY, 18, 30)
    assert db.utc(reminder["urgent_until"]) == paris(DAY, 18, 30)
    # Those who said "I can't" are not reminded; who will come is, without following the table.
    assert await reached(reminder["id"]) == {resident, facilitator, coming}

    # The meeting of the day after is reminded on its own day before, not now.
    at(monkeypatch, paris(DAY, 10, 0))
    assert (await schedule.run())["meetings"] == [later]
    assert len(await events("meeting.reminder")) == 2


async def test_a_vote_closing_tomorrow_is_announced_once_from_ten(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build_world()
    table = world.table_a
    resident = world.users["resident_a"]
    await notify.follow(resident, TABLE, table["id"])
    supporter = await add_user("soutien")
    proposals = [
        await add_proposal(table, f"Proposition numéro {n}", status="discussion") for n in range(3)
    ]
    await notify.follow(supporter, PROPOSAL, proposals[0])
    votes = [await open_vote_on(client, world, proposal) for proposal in proposals]
    closing = {
        votes[0]: paris(DAY, 9, 0),  # tomorrow morning
        votes[1]: paris(DAY + timedelta(days=1), 9, 0),  # the day after
        votes[2]: paris(DAY - timedelta(days=1), 23, 0),  # today, late
    }
    for vote_id, closes in closing.items():
        await Vote.update({Vote.closes_at: closes}).where(Vote.id == vote_id)

    at(monkeypatch, paris(DAY - timedelta(days=1), 9, 59))
    assert (await schedule.run())["votes"] == []
    at(monkeypatch, paris(DAY - timedelta(days=1), 10, 0))
    first, second = await asyncio.gather(schedule.run(), schedule.run())
    assert sorted(first["votes"] + second["votes"]) == [votes[0]]
    assert (await schedule.run())["votes"] == []
    (announced,) = await events("vote.closing")
    assert announced["key"] == f"vote.closing:{votes[0]}"
    assert announced["path"] == f"/votes/{votes[0]}"
    assert announced["params"]["question"] == "Adopter ?"
    assert datetime.fromisoformat(announced["params"]["closes_at"]) == paris(DAY, 9, 0)
    assert await reached(announced["id"]) == {resident, supporter}
    assert await Proposal.count() == 3


async def test_the_demos_next_flamants_meeting_is_reminded_the_day_before_by_sms_and_email(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from accounts.models import User
    from notifications.models import EMAIL, SMS, Delivery
    from tables.models import Table
    from voix.demo import seed

    assert await seed()
    flamants = (await Table.select(Table.id).where(Table.slug == "flamants-iris"))[0]["id"]
    logins = {
        row["login"]: row["id"]
        for row in await User.select(User.id, User.login).where(
            User.login.is_in(["samira", "karim", "nadia", "youssef", "josiane"])
        )
    }
    (following,) = await Meeting.select(Meeting.id, Meeting.starts_at).where(
        (Meeting.table == flamants) & (Meeting.status == "scheduled")
    )
    starts = db.utc(following["starts_at"])
    assert starts > datetime.now(UTC)
    assert await events("meeting.reminder") == []  # seeding told nobody of anything
    assert await Notification.count() == 0
    day_before = starts.astimezone(LOCAL_TIMEZONE).date() - timedelta(days=1)
    at(monkeypatch, paris(day_before, 10, 0))
    assert (await schedule.run())["meetings"] == [following["id"]]
    (reminder,) = await events("meeting.reminder")
    audience = await reached(reminder["id"])
    assert logins["karim"] not in audience  # he said he can't come
    assert {logins[name] for name in ("samira", "nadia", "youssef", "josiane")} <= audience
    deliveries = {
        (row["user"], row["channel"])
        for row in await Delivery.select(Delivery.user, Delivery.channel).where(
            Delivery.notification.event == reminder["id"]
        )
    }
    assert deliveries == {
        (logins["samira"], SMS),
        (logins["youssef"], SMS),
        (logins["nadia"], EMAIL),
        (logins["josiane"], EMAIL),
    }
