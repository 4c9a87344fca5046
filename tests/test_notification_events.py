"""The events the changes emit (issue 16): each once, to those who follow what changed, not to
the person who made the change; and who follows what without asking (joining, proposing,
supporting), with the backfill for what existed before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient

from accounts.models import User
from meetings.models import Meeting
from notifications import services as notify
from notifications.models import MEETING, PROPOSAL, TABLE, Event, Follow, Notification
from notifications.piccolo_migrations import notifications_2026_12_01t02_30_00_000001 as backfill
from proposals.models import ADOPTED, DISCUSSION, TRANSMITTED, Proposal, Support
from tables.models import Membership
from tests.factories import add_proposal, add_user, build_world, post_form, seat, sign_in
from tests.test_accounts import SIGNUP
from tests.test_cards import register
from tests.test_followup import answer, sent_world
from tests.test_meetings import meeting_form, schedule
from tests.test_votes import close_by_hand, open_vote_on
from voix import db
from voix.i18n import LOCAL_TIMEZONE


async def events(kind: str) -> list[dict[str, Any]]:
    rows = await Event.select().where(Event.kind == kind).order_by(Event.id)
    for row in rows:
        row["params"] = json.loads(row["params"])
    return rows


async def reached(event_id: int) -> set[int]:
    rows = await Notification.select(Notification.user).where(Notification.event == event_id)
    return {row["user"] for row in rows}


async def only_event(kind: str) -> dict[str, Any]:
    found = await events(kind)
    assert len(found) == 1, found
    return found[0]


async def followers_world() -> tuple[Any, int]:
    """Table A's resident and facilitator follow it (the facilitator acts, so hears nothing);
    a neighbour follows nothing."""
    world = await build_world()
    for user in (world.users["resident_a"], world.users["facilitator_a"]):
        await notify.follow(user, TABLE, world.table_a["id"])
    neighbour = await add_user("voisine")
    await seat(neighbour, world.table_a)  # a member who does not follow: not told
    return world, neighbour


# Meetings


async def test_scheduling_changing_and_cancelling_a_meeting_tell_its_followers_once(
    client: AsyncClient,
) -> None:
    world, neighbour = await followers_world()
    resident, facilitator = world.users["resident_a"], world.users["facilitator_a"]
    meeting_id = await schedule(client, world)
    scheduled = await only_event("meeting.scheduled")
    assert scheduled["key"] == f"meeting.scheduled:{meeting_id}"
    assert scheduled["path"] == f"/meetings/{meeting_id}"
    assert scheduled["table"] == world.table_a["id"]
    assert scheduled["params"]["table"] == world.table_a["name"]
    assert scheduled["params"]["place"] == "Centre social Flamants-Iris"
    starts = datetime.fromisoformat(scheduled["params"]["starts_at"])
    assert starts.utcoffset() == timedelta(0)
    assert starts.astimezone(LOCAL_TIMEZONE).strftime("%H:%M") == "18:30"
    assert await reached(scheduled["id"]) == {resident}
    assert neighbour not in await reached(scheduled["id"])

    # Someone who will come follows the meeting, even without following the table.
    async with db.write_transaction():
        await notify.set_rsvp(meeting_id, neighbour, True, recorded_by=None)
    # A new title is no news; a new place is.
    retitled = await post_form(
        client, f"/meetings/{meeting_id}/edit", meeting_form(title="Réunion de décembre")
    )
    assert retitled.status_code in (200, 303), retitled.text[-500:]
    assert await events("meeting.changed") == []
    moved = await post_form(
        client,
        f"/meetings/{meeting_id}/edit",
        meeting_form(title="Réunion de décembre", place="École des Flamants"),
    )
    assert moved.status_code in (200, 303), moved.text[-500:]
    changed = await only_event("meeting.changed")
    assert changed["params"]["place"] == "École des Flamants"
    assert changed["urgent_until"] is None  # next week: no hurry
    assert await reached(changed["id"]) == {resident, neighbour}
    assert facilitator not in await reached(changed["id"])

    # Moved to tomorrow: the change is urgent until it starts.
    tomorrow = (datetime.now(LOCAL_TIMEZONE) + timedelta(days=1)).date().isoformat()
    await post_form(
        client,
        f"/meetings/{meeting_id}/edit",
        meeting_form(title="Réunion de décembre", place="École des Flamants", date=tomorrow),
    )
    urgent = (await events("meeting.changed"))[-1]
    assert len(await events("meeting.changed")) == 2
    assert urgent["urgent_until"] is not None

    cancelled = await post_form(client, f"/meetings/{meeting_id}/cancel", {})
    assert cancelled.status_code in (200, 303)
    await post_form(client, f"/meetings/{meeting_id}/cancel", {})  # twice: refused, no event
    event = await only_event("meeting.cancelled")
    assert await reached(event["id"]) == {resident, neighbour}
    assert event["urgent_until"] is not None


async def test_publishing_minutes_tells_the_table_once_per_version(client: AsyncClient) -> None:
    world, _neighbour = await followers_world()
    meeting_id = await schedule(client, world)
    await post_form(client, f"/meetings/{meeting_id}/open", {})
    assert (await post_form(client, f"/meetings/{meeting_id}/close", {})).status_code == 303
    url = f"/meetings/{meeting_id}/minutes"
    await post_form(client, url, {"body": "Brouillon", "action": "save"})
    assert await events("minutes.published") == []  # a draft is not news
    await post_form(client, url, {"body": "Le compte rendu.", "action": "publish"})
    event = await only_event("minutes.published")
    assert event["key"] == f"minutes.published:{meeting_id}:1"
    assert event["path"] == url
    assert await reached(event["id"]) == {world.users["resident_a"]}
    await post_form(client, url, {"body": "Corrigé.", "action": "publish"})
    assert [e["key"] for e in await events("minutes.published")] == [
        f"minutes.published:{meeting_id}:1",
        f"minutes.published:{meeting_id}:2",
    ]


# Votes


async def test_a_vote_opened_and_its_result_reach_the_table_and_the_proposals_followers(
    client: AsyncClient,
) -> None:
    world, neighbour = await followers_world()
    proposal = await add_proposal(world.table_a, "Un abri pour l'arrêt de bus")
    supporter = await add_user("soutien")
    await notify.follow(supporter, PROPOSAL, proposal)  # follows the proposal, not the table
    vote_id = await open_vote_on(client, world, proposal)
    opened = await only_event("vote.opened")
    assert opened["key"] == f"vote.opened:{vote_id}"
    assert opened["path"] == f"/votes/{vote_id}"
    assert opened["params"] == {
        "table": world.table_a["name"],
        "question": "Adopter ?",
        "closes_at": None,
    }
    assert await reached(opened["id"]) == {world.users["resident_a"], supporter}
    await close_by_hand(client, world, vote_id)
    result = await only_event("vote.result")
    assert result["params"]["question"] == "Adopter ?"
    assert await reached(result["id"]) == {world.users["resident_a"], supporter}
    assert neighbour not in await reached(result["id"])


async def test_a_vote_closed_at_its_time_tells_everyone_who_follows(client: AsyncClient) -> None:
    from votes import closing
    from votes.models import Vote

    world, _neighbour = await followers_world()
    proposal = await add_proposal(world.table_a, "Un abri pour l'arrêt de bus")
    vote_id = await open_vote_on(client, world, proposal)
    await Vote.update({Vote.closes_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Vote.id == vote_id
    )
    assert await closing.close_due() == [vote_id]
    assert await closing.close_due() == []
    result = await only_event("vote.result")
    # Nobody closed it by hand: the facilitator who follows the table hears of it too.
    assert await reached(result["id"]) == {
        world.users["resident_a"],
        world.users["facilitator_a"],
    }


# Proposals and answers


async def test_a_status_moved_by_hand_tells_the_proposals_followers(client: AsyncClient) -> None:
    world, _neighbour = await followers_world()
    author = world.users["resident_a"]
    proposal = await add_proposal(world.table_a, "Des bancs sur la place", author=author)
    await notify.follow(author, PROPOSAL, proposal)
    await notify.follow(world.users["facilitator_a"], PROPOSAL, proposal)
    await sign_in(client, world.users["facilitator_a"])
    moved = await post_form(client, f"/proposals/{proposal}/status", {"status": DISCUSSION})
    assert moved.status_code in (200, 303)
    event = await only_event("proposal.status")
    assert event["key"] == f"proposal.status:{proposal}:{DISCUSSION}:1"
    assert event["params"] == {
        "table": world.table_a["name"],
        "title": "Des bancs sur la place",
        "status": DISCUSSION,
    }
    assert event["path"] == f"/proposals/{proposal}"
    assert await reached(event["id"]) == {author}  # not the facilitator who moved it


async def test_an_institutions_answer_tells_the_table_and_the_briefs_proposals_followers(
    client: AsyncClient,
) -> None:
    sent = await sent_world()
    world = sent.world
    await notify.follow(world.users["resident_a"], TABLE, world.table_a["id"])
    stranger = await add_user("lointaine")  # follows a proposal of the brief only
    await notify.follow(stranger, PROPOSAL, sent.proposals[1])
    await notify.follow(world.users["resident_b"], TABLE, world.table_b["id"])
    await sign_in(client, world.users["facilitator_a"])
    data = answer(sent, **{f"proposal-{sent.proposals[0]}": "answered"})
    response = await post_form(client, sent.answer_url, data)
    assert response.status_code in (200, 303), response.text[-500:]
    await post_form(client, sent.answer_url, data)  # sent twice: one answer, one event
    event = await only_event("institution.answer")
    assert event["params"] == {
        "table": world.table_a["name"],
        "institution": "Métropole Aix-Marseille",
        "brief": sent.brief["title"],
    }
    assert event["path"] == "/tables/flamants-iris/follow-up"
    assert await reached(event["id"]) == {world.users["resident_a"], stranger}
    assert TRANSMITTED != ADOPTED


# Following without asking


async def test_joining_signing_up_and_being_registered_follow_the_table(
    client: AsyncClient,
) -> None:
    world = await build_world()
    table = world.table_a["id"]
    outsider = world.users["outsider"]
    await sign_in(client, outsider)
    joined = await post_form(client, "/tables/flamants-iris/join", {})
    assert joined.status_code in (200, 303)
    assert await notify.follows(outsider, TABLE, table)

    client.cookies.clear()
    signed_up = await post_form(client, "/signup", SIGNUP, follow_redirects=False)
    assert signed_up.status_code == 303
    newcomer = (await User.select(User.id).where(User.login == "samira13"))[0]["id"]
    assert await notify.follows(newcomer, TABLE, table)

    await sign_in(client, world.users["facilitator_a"])
    registered, _code = await register(client)
    assert await notify.follows(registered, TABLE, table)
    assert not await notify.follows(world.users["facilitator_a"], TABLE, table)


async def test_authors_and_supporters_follow_the_proposal(client: AsyncClient) -> None:
    world = await build_world()
    resident, facilitator = world.users["resident_a"], world.users["facilitator_a"]
    form = {
        "title": "Éclairer le chemin de l'école",
        "body": "Le passage est plongé dans le noir dès 17 heures en hiver.",
        "theme": "public_space",
        "language": "fr",
    }
    await sign_in(client, resident)
    created = await post_form(
        client, "/tables/flamants-iris/proposals", form, follow_redirects=False
    )
    assert created.status_code == 303
    own = int(created.headers["location"].rsplit("/", 1)[1])
    assert await notify.follows(resident, PROPOSAL, own)

    # Written down by the facilitator for a resident: the resident follows it, not they.
    other = await add_user("voisin")
    await seat(other, world.table_a)
    await sign_in(client, facilitator)
    recorded = await post_form(
        client,
        "/tables/flamants-iris/proposals",
        {**form, "title": "Un banc devant l'école", "author": str(other), "consent": "yes"},
        follow_redirects=False,
    )
    assert recorded.status_code == 303, recorded.text[-500:]
    for_other = int(recorded.headers["location"].rsplit("/", 1)[1])
    assert await notify.follows(other, PROPOSAL, for_other)
    assert not await notify.follows(facilitator, PROPOSAL, for_other)

    # Supporting follows; so does a support recorded on one's behalf.
    await sign_in(client, other)
    assert (await post_form(client, f"/proposals/{own}/support", {})).status_code == 303
    assert await notify.follows(other, PROPOSAL, own)
    third = await add_user("troisieme")
    await seat(third, world.table_a)
    await sign_in(client, facilitator)
    behalf = await post_form(
        client, f"/proposals/{own}/on-behalf/support", {"resident": str(third), "consent": "yes"}
    )
    assert behalf.status_code in (200, 303), behalf.text[-500:]
    assert await Support.exists().where((Support.user == third) & (Support.proposal == own))
    assert await notify.follows(third, PROPOSAL, own)
    assert not await notify.follows(facilitator, PROPOSAL, own)


async def test_the_backfill_follows_what_people_took_part_in_once() -> None:
    world = await build_world()  # seats people without following anything
    resident = world.users["resident_a"]
    proposal = await add_proposal(world.table_a, author=resident)
    other = await add_proposal(world.table_a, "Un banc")
    await Support.insert(
        Support(proposal=other, user=world.users["facilitator_a"], created_at=datetime.now(UTC))
    )
    assert await Follow.count() == 0
    for _ in range(2):
        await backfill.follow_what_one_took_part_in()
    memberships = await Membership.count()
    assert await Follow.count().where(Follow.kind == TABLE) == memberships
    assert await notify.follows(resident, TABLE, world.table_a["id"])
    assert await notify.follows(resident, PROPOSAL, proposal)
    assert await notify.follows(world.users["facilitator_a"], PROPOSAL, other)
    assert await Follow.count() == memberships + 2
    created = await Follow.select(Follow.created_at)
    assert all(isinstance(row["created_at"], datetime) for row in created)
    assert await Proposal.count() == 2
    assert MEETING not in {row["kind"] for row in await Follow.select(Follow.kind)}
    assert await Meeting.count() == 0
