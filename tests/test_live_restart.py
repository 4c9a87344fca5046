"""The live room survives a PostgreSQL restart (issue 14, failure 1: after a restart, 10 room
screens received 0 of 3 events while /health said 200).

PostgreSQL only: on SQLite the events stay in the one process's memory. The end-to-end test
restarts a PostgreSQL of its own, started here in a temporary directory, under a real
`voix serve`; the others cut the live connections of the shared test server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.channels import ChannelsPlugin

from tests.servers import free_port, own_postgres, replica
from voix import live
from voix.settings import PROJECT_ROOT
from voix.web import SESSION_COOKIE

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        os.environ.get("VOIX_TEST_DATABASE", "sqlite") != "postgres",
        reason="live events go through PostgreSQL only in the PostgreSQL run",
    ),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

DELIVERED_WITHIN_SECONDS = 10.0


SEED = """
import asyncio, json
from datetime import UTC, datetime, timedelta
from accounts.services import open_session
from meetings.models import Meeting
from tests.factories import build_world
from voix import db

async def main():
    await db.migrate()
    world = await build_world()
    starts = datetime.now(UTC) + timedelta(hours=1)
    rows = await Meeting.insert(Meeting(
        table=world.table_a["id"], title="Réunion", starts_at=starts,
        ends_at=starts + timedelta(hours=2), place="Centre social", address="Marseille",
        languages="fr", status="open",
    )).returning(Meeting.id)
    print(json.dumps({
        "meeting": rows[0]["id"],
        "facilitator": await open_session(world.users["facilitator_a"], verified=True),
        "resident": await open_session(world.users["resident_a"]),
    }))

asyncio.run(main())
"""


def seed(env: dict[str, str]) -> dict[str, Any]:
    """A table, its people and an open meeting in the other database, in another process:
    this one's engine is bound to the shared test database."""
    done = subprocess.run(
        [sys.executable, "-c", SEED],
        check=False,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def next_event(lines: AsyncIterator[str], seconds: float) -> tuple[str, str]:
    """The next server-sent event's name and data (comments skipped)."""

    async def read() -> tuple[str, str]:
        name = ""
        async for line in lines:
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                return name, line.split(":", 1)[1].strip()
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), seconds)


async def add_speaker(base: str, session: str, meeting_id: int, name: str) -> None:
    """As the facilitator's browser would; the database has just restarted, so a first
    request may meet a connection of the old server (not this test's concern: retried)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            async with httpx.AsyncClient(
                base_url=base, cookies={SESSION_COOKIE: session}, timeout=10
            ) as client:
                await client.get("/login")
                answer = await client.post(
                    f"/meetings/{meeting_id}/speakers",
                    data={"name": name, "_csrf_token": client.cookies["csrftoken"]},
                )
            if answer.status_code == 303:
                return
            last = f"{answer.status_code}"
        except (httpx.TransportError, KeyError) as error:
            last = repr(error)
        assert asyncio.get_running_loop().time() < deadline, f"adding a speaker failed: {last}"
        await asyncio.sleep(0.5)


async def test_room_screens_hear_events_after_postgresql_restarts() -> None:
    with own_postgres() as postgres:
        admin = await asyncpg.connect(postgres.url, timeout=10)
        try:
            await admin.execute("CREATE DATABASE voix")
        finally:
            await admin.close()
        env = {**os.environ, "DATABASE_URL": postgres.url.rsplit("/", 1)[0] + "/voix"}
        world = seed(env)
        meeting_id = int(world["meeting"])
        facilitator, resident = str(world["facilitator"]), str(world["resident"])
        with replica(env) as base:
            async with AsyncExitStack() as stack:
                screens = []
                # Six screens: three of a resident, three of the facilitator (4 each at most).
                for session in [resident] * 3 + [facilitator] * 3:
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: session})
                    )
                    response = await stack.enter_async_context(
                        client.stream("GET", f"/meetings/{meeting_id}/events", timeout=60)
                    )
                    assert response.status_code == 200
                    lines = response.aiter_lines()
                    assert await anext(lines) == ": connected"
                    screens.append(lines)

                await add_speaker(base, facilitator, meeting_id, "Avant")
                for lines in screens:
                    assert await next_event(lines, DELIVERED_WITHIN_SECONDS) == ("changed", "1")

                postgres.restart()
                restarted = time.monotonic()

                # Whatever was published while the server listened to nothing is lost to
                # it: once it listens again, every screen is told to fetch its room again.
                for lines in screens:
                    assert await next_event(lines, DELIVERED_WITHIN_SECONDS) == (
                        "changed",
                        "refresh",
                    )
                caught_up = time.monotonic()
                # And events published after the restart reach every screen.
                await add_speaker(base, facilitator, meeting_id, "Après")
                for lines in screens:
                    assert await next_event(lines, DELIVERED_WITHIN_SECONDS) == ("changed", "1")
                print(
                    f"6 screens told to refresh {caught_up - restarted:.2f} s after PostgreSQL "
                    f"restarted; the next event reached them {time.monotonic() - caught_up:.2f} s "
                    "after it was asked for"
                )


@pytest.fixture
async def channels() -> AsyncIterator[ChannelsPlugin]:
    plugin = ChannelsPlugin(
        backend=live.PostgresChannels(dsn=os.environ["DATABASE_URL"]),
        arbitrary_channels_allowed=True,
    )
    async with plugin:
        yield plugin


async def cut_live_connections() -> int:
    """Ends this process's live connections from the server's side, as a restart does."""
    admin = await asyncpg.connect(os.environ["DATABASE_URL"], timeout=10)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = $1",
                live.APPLICATION_NAME,
            )
        )
    finally:
        await admin.close()


async def received(events: AsyncIterator[bytes]) -> dict[str, object]:
    return dict(json.loads(await asyncio.wait_for(anext(events), DELIVERED_WITHIN_SECONDS)))


async def test_a_lost_listener_and_publisher_reconnect_and_subscribers_catch_up(
    channels: ChannelsPlugin,
) -> None:
    async with channels.start_subscription(["meeting:1", "votes"]) as subscriber:
        events = subscriber.iter_events()
        channels.publish(json.dumps({"meeting": 1}), "meeting:1")
        assert await received(events) == {"meeting": 1}

        assert await cut_live_connections() == 2  # the LISTEN one and the publishing one

        # Back with every channel it listened to, and a catch-up on each.
        assert await received(events) == live.REFRESH
        assert await received(events) == live.REFRESH
        # The publishing connection is found dead and opened again: nothing is lost.
        channels.publish(json.dumps({"vote": 7}), "votes")
        assert await received(events) == {"vote": 7}
        channels.publish(json.dumps({"meeting": 1}), "meeting:1")
        assert await received(events) == {"meeting": 1}


async def test_publishing_while_postgresql_is_unreachable_never_stops_publishing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = live.PostgresChannels(dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    plugin = ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)
    with caplog.at_level(logging.WARNING, logger="voix"):
        async with plugin:
            for n in range(3):
                plugin.publish(json.dumps({"meeting": n}), "meeting:1")
            deadline = asyncio.get_running_loop().time() + DELIVERED_WITHIN_SECONDS
            while plugin._pub_queue and plugin._pub_queue.qsize():
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            # Litestar's publishing task died with the first error: later events stayed queued.
            assert plugin._pub_task is not None
            assert not plugin._pub_task.done()
    cannot_publish = [r for r in caplog.records if "cannot be published" in r.getMessage()]
    assert len(cannot_publish) == 1  # once per outage, not once per event
