"""Issue 16 and residents' rights: the download of one's data holds one's notification settings
(consents, who recorded them, digest, STOP), follows, answers to meetings and the history of
what was sent (and how); nobody else's. Erasing the account takes all of it away."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from httpx import AsyncClient

from accounts.models import User
from notifications import services as notify
from notifications.models import (
    EMAIL,
    SENT,
    SMS,
    Delivery,
    Event,
    Follow,
    Notification,
    Preference,
    Rsvp,
)
from tests.factories import PASSWORD, World, add_user, build_world, post_form, sign_in
from tests.test_meetings import schedule
from voix import db


async def notified_world(client: AsyncClient) -> tuple[World, int, int, int]:
    """resident_a: SMS recorded by the facilitator, e-mail by themself (digest), follows the
    table, will come to a meeting, received one event by SMS (sent) and e-mail (queued).
    A neighbour received the same event."""
    world = await build_world()
    resident, facilitator = world.users["resident_a"], world.users["facilitator_a"]
    neighbour = await add_user("voisine", "Voisine Secrète")
    await User.update({User.phone: "+33600000001", User.email: "resident@example.org"}).where(
        User.id == resident
    )
    await User.update({User.phone: "+33600000099", User.email: "voisine@example.org"}).where(
        User.id == neighbour
    )
    meeting = await schedule(client, world)
    async with db.write_transaction():
        await notify.set_channels(
            resident, sms=True, email=False, email_digest=True, recorded_by=facilitator
        )
        await notify.set_channels(
            resident, sms=True, email=True, email_digest=True, recorded_by=resident
        )
        await notify.set_channels(
            neighbour, sms=True, email=True, email_digest=False, recorded_by=None
        )
        await notify.set_rsvp(meeting, resident, True, recorded_by=facilitator)
        await notify.set_rsvp(meeting, neighbour, False, recorded_by=None)
        for user in (resident, neighbour):
            await notify.follow(user, notify.TABLE, world.table_a["id"])
        await notify.emit(
            "meeting.changed",
            f"meeting.changed:{meeting}:test",
            audience=notify.Audience(follows=notify.followers((notify.TABLE, world.table_a["id"]))),
            params={"table": "Flamants", "title": "Réunion"},
            path=f"/meetings/{meeting}",
            table_id=world.table_a["id"],
        )
    await Delivery.update({Delivery.status: SENT, Delivery.sent_at: datetime.now(UTC)}).where(
        Delivery.channel == SMS
    )
    return world, resident, neighbour, meeting


async def test_the_download_holds_my_notification_settings_and_history_only(
    client: AsyncClient,
) -> None:
    world, resident, neighbour, meeting = await notified_world(client)
    await sign_in(client, resident)
    response = await client.get("/account/data.json")
    assert response.status_code == 200
    data = response.json()
    (preference,) = data["notification_preferences"]
    assert preference["sms_consent_at"] is not None
    assert preference["sms_consent_recorded_by"] == "Facilitator-A"  # recorded with them
    assert preference["email_consent_at"] is not None
    assert preference["email_consent_recorded_by"] is None  # given by themself
    assert preference["email_digest"] is True
    assert preference["sms_stopped_at"] is None
    assert sorted((f["kind"], f["target"]) for f in data["follows"]) == [
        (notify.MEETING, meeting),
        (notify.TABLE, world.table_a["id"]),
    ]
    (rsvp,) = data["meeting_answers"]
    assert (rsvp["meeting"], rsvp["coming"], rsvp["recorded_by"]) == (
        meeting,
        True,
        "Facilitator-A",
    )
    (received,) = data["notifications"]
    assert received["kind"] == "meeting.changed"
    assert received["read_at"] is None
    assert received["created_at"]
    channels = {d["channel"]: d for d in received["deliveries"]}
    assert set(channels) == {SMS, EMAIL}
    assert channels[SMS]["status"] == SENT
    assert channels[SMS]["sent_at"] is not None
    # Nothing of the neighbour who received the same event, nor of their answer.
    assert "Voisine" not in response.text
    assert "+33600000099" not in response.text
    assert "voisine@example.org" not in response.text
    assert str(neighbour) not in {str(d.get("user")) for d in received["deliveries"]}


async def test_erasing_the_account_takes_its_notification_data_away(client: AsyncClient) -> None:
    _world, resident, neighbour, _meeting = await notified_world(client)
    await sign_in(client, resident)
    erased = await post_form(
        client, "/account/erase", {"password": PASSWORD, "confirm": "yes"}, follow_redirects=False
    )
    assert erased.status_code == 303
    for model in (Preference, Follow, Rsvp, Notification, Delivery):
        assert not await model.exists().where(model.user == resident), model
        assert await model.exists().where(model.user == neighbour), model


async def test_erasing_a_facilitator_takes_their_name_off_the_messages_they_sent(
    client: AsyncClient,
) -> None:
    world = await build_world()
    facilitator = world.users["facilitator_a"]
    await User.update({User.display_name: "Fatou Animatrice"}).where(User.id == facilitator)
    other = world.users["facilitator_b"]
    for author_id, key in ((facilitator, "message:mine"), (other, "message:theirs")):
        async with db.write_transaction():
            await notify.emit(
                "message",
                key,
                audience=notify.Audience(members_of=world.table_a["id"], exclude=author_id),
                params={
                    "table": "A",
                    "author": "Fatou Animatrice" if author_id == facilitator else "Autre",
                    "author_id": author_id,
                    "text": "Réunion demain",
                },
                path="/tables/a",
                table_id=world.table_a["id"],
            )
    await sign_in(client, facilitator)
    erased = await post_form(
        client, "/account/erase", {"password": PASSWORD, "confirm": "yes"}, follow_redirects=False
    )
    assert erased.status_code == 303
    params = {
        row["key"]: json.loads(row["params"]) for row in await Event.select(Event.key, Event.params)
    }
    assert "Fatou" not in json.dumps(params, ensure_ascii=False)
    assert params["message:mine"]["text"] == "Réunion demain"  # the residents keep the message
    assert params["message:mine"]["author_id"] is None
    assert params["message:theirs"]["author"] == "Autre"
