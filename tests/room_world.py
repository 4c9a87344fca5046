"""A meeting being held with a vote on its agenda, people checked in, and a facilitator whose
authentication app the tests can read: what the room-voting tests start from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyotp
from httpx import AsyncClient

from accounts import mfa
from accounts.models import User
from accounts.totp import generate_totp_secret
from meetings.models import Attendance
from tests.factories import World, add_proposal, add_user, build_world, post_form, seat, sign_in
from tests.test_meetings import meeting_form
from voix import crypto


@dataclass
class Room:
    world: World
    meeting_id: int
    vote_id: int
    secrets: dict[int, str] = field(default_factory=dict)
    people: dict[str, str] = field(default_factory=dict)  # name -> person key
    users: dict[str, int] = field(default_factory=dict)  # name -> user id (members)


async def give_totp(user_id: int) -> str:
    secret = generate_totp_secret()
    await User.update(
        {
            User.totp_secret: crypto.encrypt(secret, mfa.TOTP),
            User.totp_enabled_at: datetime.now(UTC),
            User.totp_last_step: None,
        }
    ).where(User.id == user_id)
    return secret


async def fresh_code(room: Room, user_id: int) -> str:
    """The code the facilitator's app shows now, usable again (as the next step's would be)."""
    await User.update({User.totp_last_step: None}).where(User.id == user_id)
    return pyotp.TOTP(room.secrets[user_id]).now()


async def build_room(
    client: AsyncClient,
    *,
    electorate: str = "both",
    method: str = "yes_no_abstain",
    members: tuple[tuple[str, str], ...] = (("Samira", "fr"), ("Karim", "ar"), ("Nadia", "fr")),
    walk_ins: tuple[str, ...] = ("Fatou",),
    proposals: int = 3,
) -> Room:
    """Table A's meeting, open, with these members and walk-ins checked in, and a vote held
    by it (for/against on one proposal, or majority judgment / approval over several)."""
    world = await build_world()
    room = Room(world=world, meeting_id=0, vote_id=0)
    for name, language in members:
        user_id = await add_user(f"member-{name.lower()}", name)
        await User.update({User.language: language}).where(User.id == user_id)
        await seat(user_id, world.table_a)
        room.users[name] = user_id
        room.people[name] = f"user:{user_id}"
    for manager in ("facilitator_a", "coordinator_a"):
        room.secrets[world.users[manager]] = await give_totp(world.users[manager])
    await sign_in(client, world.users["facilitator_a"])
    made = await post_form(client, "/tables/flamants-iris/meetings", meeting_form(agenda=""))
    assert made.status_code == 303, made.text
    room.meeting_id = int(made.headers["location"].rsplit("/", 1)[1])
    assert (await post_form(client, f"/meetings/{room.meeting_id}/open", {})).status_code == 303
    for user_id in room.users.values():
        ticked = await post_form(
            client, f"/meetings/{room.meeting_id}/attendance/members/{user_id}", {}
        )
        assert ticked.status_code == 303, ticked.text
    for name in walk_ins:
        came = await post_form(
            client, f"/meetings/{room.meeting_id}/attendance/walk-in", {"name": name}
        )
        assert came.status_code == 303, came.text
        room.people[name] = f"name:{name.casefold()}"
    ids = [await add_proposal(world.table_a, f"Proposition {i + 1}") for i in range(proposals)]
    form: dict[str, Any] = {
        "question": "Que décide la table ?",
        "electorate": electorate,
        "meeting": room.meeting_id,
    }
    if method == "yes_no_abstain":
        opened = await post_form(client, f"/proposals/{ids[0]}/votes", form)
    else:
        opened = await post_form(
            client, "/tables/flamants-iris/votes", {**form, "method": method, "proposals": ids}
        )
    assert opened.status_code == 303, opened.text[-3000:]
    room.vote_id = int(opened.headers["location"].rsplit("/", 1)[1])
    return room


async def checked_in(meeting_id: int) -> list[str]:
    rows = await Attendance.select(Attendance.person).where(Attendance.meeting == meeting_id)
    return [row["person"] for row in rows]
