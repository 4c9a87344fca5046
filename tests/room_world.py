"""A meeting being held with a vote on its agenda, people checked in, and a facilitator whose
authentication app the tests can read: what the room-voting tests start from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyotp
from httpx import AsyncClient, Response

from accounts import mfa
from accounts.models import User
from accounts.totp import generate_totp_secret
from meetings.models import Attendance
from tests.conftest import make_client
from tests.factories import (
    World,
    add_proposal,
    add_user,
    build_world,
    post_form,
    seat,
    sign_in,
)
from tests.test_meetings import meeting_form
from voix import crypto

# The PIN the tests' facilitators choose when they start the tablet.
TABLET_PIN = "2468"


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


# The shared tablet, as the facilitator runs it from `client`


async def start_tablet(
    client: AsyncClient, room: Room, *, manager: str = "facilitator_a", pin: str = TABLET_PIN
) -> Response:
    """The signed-in manager's session becomes the vote's tablet: their code and a PIN."""
    code = await fresh_code(room, room.world.users[manager])
    started = await post_form(
        client, f"/votes/{room.vote_id}/tablet/start", {"code": code, "pin": pin}
    )
    assert started.status_code == 303, started.text[-2000:]
    assert started.headers["location"] == f"/votes/{room.vote_id}/tablet"
    return started


async def unlock_tablet(client: AsyncClient, vote_id: int, pin: str = TABLET_PIN) -> Response:
    """The facilitator takes the tablet back: their PIN, and the names show again."""
    unlocked = await post_form(client, f"/votes/{vote_id}/tablet/unlock", {"pin": pin})
    assert unlocked.status_code == 303, unlocked.text[-2000:]
    assert unlocked.headers["location"] == f"/votes/{vote_id}/tablet"
    return unlocked


def handover_of(page: str) -> str:
    """The handover code a tablet's ballot form carries back."""
    return page.split('name="handover" value="', 1)[1].split('"', 1)[0]


async def hand_tablet(client: AsyncClient, room: Room, name: str) -> str:
    """The facilitator takes the tablet back (PIN) and hands it to `name` (a key of
    room.people, or a person key): the handover code of the ballot it then shows."""
    vote = room.vote_id
    await unlock_tablet(client, vote)
    person = room.people.get(name, name)
    handed = await post_form(client, f"/votes/{vote}/tablet/hand", {"person": person})
    assert handed.status_code == 303, handed.text[-2000:]
    assert handed.headers["location"] == f"/votes/{vote}/tablet/ballot"
    ballot = await client.get(f"/votes/{vote}/tablet/ballot")
    assert ballot.status_code == 200, ballot.text[-2000:]
    return handover_of(ballot.text)


@asynccontextmanager
async def device(app: object, user_id: int, *, verified: bool = True) -> AsyncIterator[AsyncClient]:
    """Another device, with cookies of its own, signed in as this user."""
    async with make_client(app) as other:
        await sign_in(other, user_id, verified=verified)
        yield other
