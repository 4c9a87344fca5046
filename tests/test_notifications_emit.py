"""notifications.services.emit: one event once, its audience once each, deliveries only by
the channels a person consented to."""

from __future__ import annotations

from accounts.models import User
from notifications import services
from notifications.models import EMAIL, SMS, Delivery, Event, Notification
from tests.factories import add_user, build_world
from voix import db


async def test_emit_reaches_followers_and_members_once_by_consented_channels() -> None:
    world = await build_world()
    table = world.table_a
    resident = world.users["resident_a"]
    facilitator = world.users["facilitator_a"]
    outsider = await add_user("voisine")
    await User.update({User.phone: "+33600000001", User.email: "r@example.org"}).where(
        User.id == resident
    )
    await User.update({User.phone: "+33600000002"}).where(User.id == outsider)
    async with db.write_transaction():
        await services.set_channels(
            resident, sms=True, email=False, email_digest=False, recorded_by=facilitator
        )
        await services.set_channels(
            outsider, sms=False, email=True, email_digest=False, recorded_by=None
        )
    await services.follow(outsider, services.PROPOSAL, 7)
    await services.follow(resident, services.PROPOSAL, 7)
    audience = services.Audience(
        follows=services.followers((services.PROPOSAL, 7)),
        members_of=table["id"],
        exclude=facilitator,
    )
    for _ in range(2):
        async with db.write_transaction():
            await services.emit(
                "proposal.status",
                "proposal.status:7:1",
                audience=audience,
                params={"title": "Un banc"},
                path="/proposals/7",
                table_id=table["id"],
            )
    assert await Event.count() == 1
    reached = {row["user"] for row in await Notification.select(Notification.user)}
    assert reached == {resident, outsider}
    deliveries = await Delivery.select(Delivery.user, Delivery.channel)
    # The resident consented to SMS only; the outsider to e-mail but has no address.
    assert [(row["user"], row["channel"]) for row in deliveries] == [(resident, SMS)]
    preference = await services.preference(resident)
    assert preference["sms_consent_by"] == facilitator
    assert preference["email_consent_at"] is None
    assert EMAIL != SMS


async def test_declined_rsvp_leaves_the_meetings_reminder_audience() -> None:
    world = await build_world()
    table = world.table_a
    resident = world.users["resident_a"]
    from meetings.models import Meeting

    rows = await Meeting.insert(
        Meeting(
            table=table["id"],
            title="Table",
            starts_at=services.now(),
            ends_at=services.now(),
            place="Centre social",
            address="",
            languages="fr",
            created_at=services.now(),
        )
    ).returning(Meeting.id)
    meeting = rows[0]["id"]
    async with db.write_transaction():
        await services.set_rsvp(meeting, resident, False, recorded_by=world.users["facilitator_a"])
        await services.emit(
            "meeting.reminder",
            f"meeting.reminder:{meeting}",
            audience=services.Audience(
                follows=services.followers((services.MEETING, meeting)),
                members_of=table["id"],
                not_declined=meeting,
            ),
            params={},
            path=f"/meetings/{meeting}",
        )
    reached = {row["user"] for row in await Notification.select(Notification.user)}
    assert resident not in reached
    assert world.users["facilitator_a"] in reached
    assert await services.rsvp_of(meeting, resident) is False
    async with db.write_transaction():
        await services.set_rsvp(meeting, resident, True, recorded_by=resident)
    assert await services.rsvp_of(meeting, resident) is True
    assert await services.follows(resident, services.MEETING, meeting)
