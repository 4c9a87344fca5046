"""Live updates through Litestar Channels.

On PostgreSQL the channels are PostgreSQL's own LISTEN/NOTIFY, so an event published by one
app process reaches the pages held open by every other; on SQLite (one process) they live
in memory. Events carry no personal data, only what changed: pages fetch the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from typing import Any

from litestar import Litestar
from litestar.background_tasks import BackgroundTask
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from voix.forms import UserError, parse_int
from voix.i18n import N_
from voix.settings import get_settings

KEEP_ALIVE_SECONDS = 20  # a comment line this often keeps proxies from closing the stream


PERSON_STREAMS_FULL = N_(
    "You already follow %(max)d live pages. Close one of them, then reload this page."
)
MEETING_STREAMS_FULL = N_(
    "Too many screens follow this meeting live right now. Reload this page in a moment."
)


class StreamsFull(UserError):
    def __init__(self, msgid: str, **params: Any) -> None:
        super().__init__(msgid, status_code=429, **params)
        self.retry_after_seconds = 30


def _setting(name: str, default: int) -> int:
    return parse_int(os.environ.get(name), min=1) or default


class StreamSlots:
    """How many event streams are open, per person and per meeting, in this process.

    Per person, not per session: anyone may sign in as often as they like, and 76 sessions of
    one resident once filled a meeting's streams. Those who run the table are not held by the
    meeting's cap (a full room must not lock the facilitator's screen out), only by their own.

    Counted in memory, per process, on purpose: a stream lasts hours, a row per stream in the
    database would be written twice per stream and left behind by a process that dies. So the
    caps hold per app process: with N processes behind the proxy (several replicas on
    PostgreSQL) a person may hold up to N times VOIX_STREAMS_PER_PERSON streams and a meeting
    N times VOIX_STREAMS_PER_MEETING.
    """

    def __init__(self) -> None:
        self.held: Counter[str] = Counter()

    def take(self, person: int, meeting_id: int, runs_the_table: bool) -> Callable[[], None]:
        """One slot for this person and meeting, or StreamsFull; returns the release, which
        may be called any number of times."""
        per_person = _setting("VOIX_STREAMS_PER_PERSON", 4)
        per_meeting = _setting("VOIX_STREAMS_PER_MEETING", 300)
        # Those who run the table stand outside the meeting's budget: they neither use it up
        # nor are refused by it.
        keys = (
            (f"person:{person}",)
            if runs_the_table
            else (
                f"person:{person}",
                f"meeting:{meeting_id}",
            )
        )
        if self.held[keys[0]] >= per_person:
            raise StreamsFull(PERSON_STREAMS_FULL, max=per_person)
        if len(keys) > 1 and self.held[keys[1]] >= per_meeting:
            raise StreamsFull(MEETING_STREAMS_FULL)
        self.held.update(keys)
        taken = True

        def release() -> None:
            nonlocal taken
            if taken:
                taken = False
                self.held.subtract(keys)
                for key in keys:
                    if self.held[key] <= 0:
                        del self.held[key]

        return release


stream_slots = StreamSlots()


def capped_stream(
    person: int,
    meeting_id: int,
    runs_the_table: bool,
    messages: Callable[[], AsyncGenerator[ServerSentEventMessage, None]],
) -> ServerSentEvent:
    """The meeting's event stream for this person, within their slots (StreamsFull beyond).

    Callers have checked the reader may follow the meeting, so the person is signed in.
    The slot comes back when the stream ends: a disconnect cancels it (Litestar listens for
    it), which runs the `finally`; the background task covers a stream that never started.
    """
    release = stream_slots.take(person, meeting_id, runs_the_table)

    async def guarded() -> AsyncIterator[ServerSentEventMessage]:
        try:
            async with contextlib.aclosing(messages()) as stream:
                async for message in stream:
                    yield message
        finally:
            release()

    async def release_after() -> None:  # async: a sync task would run in a thread
        release()

    return ServerSentEvent(
        guarded(), headers={"cache-control": "no-store"}, background=BackgroundTask(release_after)
    )


def channels_plugin() -> ChannelsPlugin:
    url = get_settings().database_url
    backend = (
        AsyncPgChannelsBackend(dsn=url)
        if url.startswith(("postgres://", "postgresql://"))
        else MemoryChannelsBackend()
    )
    return ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)


def publish(app: Litestar, channel: str, **event: Any) -> None:
    """Queues an event; delivery is best effort (a page that misses one refreshes on the next)."""
    app.plugins.get(ChannelsPlugin).publish(json.dumps(event), channels=[channel])


async def events(app: Litestar, channels: Iterable[str]) -> AsyncIterator[dict[str, Any] | None]:
    """Events of these channels as they come; None when nothing came for a while (keep-alive)."""
    plugin = app.plugins.get(ChannelsPlugin)
    async with plugin.start_subscription(list(channels)) as subscriber:
        stream = subscriber.iter_events()
        # Waiting on a task, not on the generator itself: a time-out must not cancel (and
        # so close) the subscriber's generator.
        pending: asyncio.Future[bytes] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(stream))
                done, _ = await asyncio.wait({pending}, timeout=KEEP_ALIVE_SECONDS)
                if not done:
                    yield None
                    continue
                message, pending = pending.result(), None
                yield json.loads(message)
        finally:
            if pending is not None:
                pending.cancel()
