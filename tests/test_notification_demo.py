"""Issue 16's "done when": the demo's Flamants residents hear of their next meeting the day
before, in the development log, in French (one SMS segment) and in Arabic (two: the place is
kept whole); the e-mails
go too. The clock is moved (notifications.services.now), nothing else."""

from __future__ import annotations

import logging
import re
from datetime import UTC, timedelta

import pytest

from accounts.models import User
from meetings.models import Meeting
from notifications import delivery, schedule
from notifications.models import SENT, Delivery
from tables.models import Table
from tests.test_notification_schedule import at, paris
from voix import db
from voix.demo import seed
from voix.i18n import LOCAL_TIMEZONE

ARABIC = re.compile(r"[\u0600-\u06ff]")


def _logged(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == name]


async def test_the_demos_reminders_reach_the_log_in_french_and_arabic_the_day_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert await seed()
    flamants = (await Table.select(Table.id).where(Table.slug == "flamants-iris"))[0]["id"]
    users = {
        row["login"]: row
        for row in await User.select(User.id, User.login, User.phone, User.email, User.language)
    }
    assert users["youssef"]["language"] == "ar"
    (meeting,) = await Meeting.select(Meeting.id, Meeting.starts_at, Meeting.place).where(
        (Meeting.table == flamants) & (Meeting.status == "scheduled")
    )
    day_before = db.utc(meeting["starts_at"]).astimezone(LOCAL_TIMEZONE).date() - timedelta(1)
    caplog.set_level(logging.INFO)

    # The evening two days before: nothing yet.
    at(monkeypatch, paris(day_before - timedelta(days=1), 19, 0))
    await schedule.run()
    await delivery.dispatch()
    assert _logged(caplog, "voix.notifications") == []

    # 10:00 the day before: the reminders are made and the SMS and immediate e-mails go.
    at(monkeypatch, paris(day_before, 10, 0))
    await schedule.run()
    await delivery.dispatch()
    sms = _logged(caplog, "voix.notifications")
    to_samira = [line for line in sms if users["samira"]["phone"] in line]
    to_youssef = [line for line in sms if users["youssef"]["phone"] in line]
    assert len(to_samira) == 1, sms
    assert len(to_youssef) == 1, sms
    link = f"/meetings/{meeting['id']}"
    assert "demain" in to_samira[0].lower()
    assert "GSM-7, 1 segment" in to_samira[0]
    assert link in to_samira[0]
    assert not ARABIC.search(to_samira[0])
    assert ARABIC.search(to_youssef[0].split("\n", 1)[1])
    # Arabic needs UCS-2 (70 characters a segment): the time and place are kept whole, in two.
    assert "UCS-2, 2 segment" in to_youssef[0]
    assert meeting["place"] in to_youssef[0]
    assert meeting["place"] in to_samira[0]
    assert link in to_youssef[0]
    mails = _logged(caplog, "voix.mail")
    assert [m for m in mails if users["nadia"]["email"] in m and link in m]
    # Josiane chose the daily digest, but a reminder of tomorrow's meeting does not wait.
    assert [m for m in mails if users["josiane"]["email"] in m and link in m]

    # Running again (a retry, another replica's minute) sends nothing twice.
    await schedule.run()
    await delivery.dispatch()
    assert len(_logged(caplog, "voix.notifications")) == len(sms)

    assert len(_logged(caplog, "voix.mail")) == len(mails)
    assert await Delivery.count().where(Delivery.status == SENT) == 4
    assert db.utc(meeting["starts_at"]) > paris(day_before, 10, 0).astimezone(UTC)
