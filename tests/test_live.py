"""Live updates of the room through real servers: an act on one process reaches the screens
held open on another (PostgreSQL LISTEN/NOTIFY), or on the same one (SQLite, in memory)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from accounts.services import load_principal, open_session
from meetings.models import AgendaItem, Meeting
from tests.conftest import DATABASE_KIND
from tests.factories import add_proposal, add_user, build_world, seat, t
from tests.servers import replica
from voix import live
from voix.web import SESSION_COOKIE
from votes import services as votes

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@contextmanager
def servers(count: int) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(replica(dict(os.environ))) for _ in range(count)]


async def post(base: str, session: str, path: str, data: dict[str, str]) -> httpx.Response:
    """A form posted as a browser would: session cookie, and the CSRF token of a page."""
    async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: session}) as client:
        await client.get("/login")
        token = client.cookies["csrftoken"]
        return await client.post(path, data={**data, "_csrf_token": token})


async def next_event(lines, seconds: float = 10) -> str:
    """The name of the next server-sent event (comments and blank lines skipped)."""

    async def read() -> str:
        async for line in lines:
            if line.startswith("event:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), seconds)


async def open_meeting_with_vote(world) -> tuple[int, int]:
    manager = await load_principal(await open_session(world.users["facilitator_a"], verified=True))
    proposal = await add_proposal(world.table_a, "Le plan des bancs")
    vote_id = await votes.open_vote(
        manager, world.table_a, [proposal], {"question": "Adopter le plan des bancs ?"}
    )
    starts = datetime.now(UTC) + timedelta(hours=1)
    meeting = await Meeting.insert(
        Meeting(
            table=world.table_a["id"],
            title="Réunion",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            place="Centre social",
            address="Marseille",
            languages="fr",
            status="open",
        )
    ).returning(Meeting.id)
    item = await AgendaItem.insert(
        AgendaItem(meeting=meeting[0]["id"], position=1, title="Vote", vote=vote_id)
    ).returning(AgendaItem.id)
    await Meeting.update({Meeting.current_item: item[0]["id"]}).where(
        Meeting.id == meeting[0]["id"]
    )
    return meeting[0]["id"], vote_id


async def check_events_cross(acting: str, watching: str) -> None:
    world = await build_world()
    meeting_id, vote_id = await open_meeting_with_vote(world)
    facilitator = await open_session(world.users["facilitator_a"], verified=True)
    resident = await open_session(world.users["resident_a"])
    async with (
        httpx.AsyncClient(base_url=watching, cookies={SESSION_COOKIE: resident}) as screen,
        screen.stream("GET", f"/meetings/{meeting_id}/events", timeout=15) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await anext(lines) == ": connected"

        # The facilitator adds a speaker on one process...
        added = await post(
            acting, facilitator, f"/meetings/{meeting_id}/speakers", {"name": "Nadia"}
        )
        assert added.status_code == 303
        assert await next_event(lines) == "changed"  # ...the screen on the other hears it.

        # A ballot cast on one process moves the count on the other's screen.
        cast = await post(acting, resident, f"/votes/{vote_id}/ballot", {"choice": "yes"})
        assert cast.status_code == 200
        assert await next_event(lines) == "changed"
        block = await screen.get(
            f"/meetings/{meeting_id}/screen", headers={"hx-request": "true", "hx-target": "room"}
        )
        assert '<span class="number ballots-cast">1</span>' in block.text
        assert "Nadia" in block.text


@pytest.mark.postgres_only
@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="two processes share PostgreSQL only")
async def test_the_room_screen_on_one_process_hears_acts_on_another() -> None:
    with servers(2) as (first, second):
        await check_events_cross(acting=first, watching=second)


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="the PostgreSQL run uses two processes")
async def test_the_room_screen_hears_acts_on_the_same_process() -> None:
    with servers(1) as (only,):
        await check_events_cross(acting=only, watching=only)


async def test_strangers_cannot_listen_to_a_room() -> None:
    world = await build_world()
    meeting_id, _ = await open_meeting_with_vote(world)
    outsider = await open_session(world.users["resident_b"])
    with servers(1) as (only,):
        async with httpx.AsyncClient(base_url=only) as client:
            anonymous = await client.get(f"/meetings/{meeting_id}/events")
            assert anonymous.status_code in (303, 401)
            client.cookies.set(SESSION_COOKIE, outsider)
            refused = await client.get(f"/meetings/{meeting_id}/events")
            assert refused.status_code == 403


class Stream:
    """One browser tab holding the room's event stream open."""

    def __init__(self, base: str, session: str, meeting_id: int) -> None:
        self.base, self.session, self.meeting_id = base, session, meeting_id
        self.stack = AsyncExitStack()

    async def open(self) -> httpx.Response:
        client = await self.stack.enter_async_context(
            httpx.AsyncClient(base_url=self.base, cookies={SESSION_COOKIE: self.session})
        )
        response = await self.stack.enter_async_context(
            client.stream("GET", f"/meetings/{self.meeting_id}/events", timeout=30)
        )
        if response.status_code == 200:
            # Kept: a line iterator dropped and collected closes the connection with it.
            self.lines = response.aiter_lines()
            assert await anext(self.lines) == ": connected"
        else:
            await response.aread()
        return response

    async def close(self) -> None:
        await self.stack.aclose()


async def test_event_streams_are_capped_per_person_and_per_meeting_and_come_back() -> None:
    world = await build_world()
    meeting_id, _ = await open_meeting_with_vote(world)
    neighbour = await add_user("neighbour-a")
    await seat(neighbour, world.table_a)
    phone = await open_session(world.users["resident_a"])
    tablet = await open_session(world.users["resident_a"])  # the same resident, signed in again
    other = await open_session(neighbour)
    projector = await open_session(world.users["facilitator_a"], verified=True)
    env = {**os.environ, "VOIX_STREAMS_PER_MEETING": "6"}  # per person: the default, 4
    opened: list[Stream] = []

    async def open_many(session: str, count: int) -> list[httpx.Response]:
        streams = [Stream(base, session, meeting_id) for _ in range(count)]
        opened.extend(streams)
        return await asyncio.gather(*(stream.open() for stream in streams))

    with replica(env) as base:
        try:
            # Five at once from one resident: four are served, the fifth is refused.
            responses = await open_many(phone, 5)
            assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 429]
            refused = next(r for r in responses if r.status_code == 429)
            assert t(live.PERSON_STREAMS_FULL, max=4) in refused.text
            assert refused.headers["retry-after"] == "30"
            # Signing in again gives no more: the cap is the person's, not the session's.
            (again,) = await open_many(tablet, 1)
            assert again.status_code == 429
            assert t(live.PERSON_STREAMS_FULL, max=4) in again.text

            # Another resident fills the meeting's six; a seventh stream is refused...
            statuses = [r.status_code for r in await open_many(other, 3)]
            assert sorted(statuses) == [200, 200, 429]
            # ...but the facilitator's room screen still gets in: a full room locks nobody
            # who runs it out of it.
            (screen,) = await open_many(projector, 1)
            assert screen.status_code == 200

            # One of the phone's tabs is closed: its slot comes back, the other resident gets in.
            served = [s for s, r in zip(opened, responses, strict=False) if r.status_code == 200]
            await served[0].close()
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                (retry,) = await open_many(other, 1)
                if retry.status_code == 200:
                    break
                assert asyncio.get_running_loop().time() < deadline, "the slot never came back"
                await asyncio.sleep(0.2)
            (full,) = await open_many(tablet, 1)
            assert full.status_code == 429
            assert t(live.MEETING_STREAMS_FULL) in full.text
        finally:
            await asyncio.gather(*(stream.close() for stream in opened))
