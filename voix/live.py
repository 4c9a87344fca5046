"""Live updates through Litestar Channels.

On PostgreSQL the channels are PostgreSQL's own LISTEN/NOTIFY, so an event published by one
app process reaches the pages held open by every other; on SQLite (one process) they live
in memory. Events carry no personal data, only what changed: pages fetch the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from types import FrameType
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from litestar import Litestar
from litestar.background_tasks import BackgroundTask
from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from voix.forms import UserError, parse_int
from voix.i18n import N_
from voix.settings import get_settings

logger = logging.getLogger("voix")

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


# Pushed to every channel a process listens to when its LISTEN connection comes back: whatever
# was published meanwhile never reached it, so every page following a room fetches it again.
REFRESH = {"refresh": True}

RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
CHECK_EVERY_SECONDS = 15.0  # a LISTEN connection cut without a word (a network gone) shows here
DATABASE_TIMEOUT_SECONDS = 5.0
APPLICATION_NAME = "voix live"


def reconnect_delay(failures: int) -> float:
    """0.5 s doubling to 10 s, with jitter: the processes that lost PostgreSQL together do not
    all knock on it again at the same instant."""
    delay = min(RECONNECT_FIRST_SECONDS * 2 ** max(failures - 1, 0), RECONNECT_MAX_SECONDS)
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 — jitter, not a secret


def _chain_stop_signals(stop: Callable[[], None]) -> Callable[[], None]:
    """Calls `stop`, then the handler already there, on SIGTERM and SIGINT; returns the undo.

    uvicorn waits for open responses to end before it runs the app's shutdown, and an event
    stream never ends by itself: without this, a process with open room screens waits out
    the whole graceful-shutdown time (or forever) and then cuts them. The server's own
    handler still runs, so it stops as it always does.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only
    loop = asyncio.get_running_loop()
    chained: dict[int, tuple[Any, Any]] = {}
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue  # the default ends the process at once; an ignored signal stops nothing

        def handler(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            with contextlib.suppress(RuntimeError):  # a loop already closed: nothing to stop
                loop.call_soon_threadsafe(stop)
            previous(signum, frame)

        signal.signal(number, handler)
        chained[number] = (handler, previous)

    def undo() -> None:
        for number, (handler, previous) in chained.items():
            if signal.getsignal(number) is handler:  # not if another took it over since
                signal.signal(number, previous)

    return undo


class StopAware:
    """A backend that knows when its process is stopping, so open event streams can end."""

    stopping: asyncio.Event
    _undo_signals: Callable[[], None]

    def _start_hearing_stop(self) -> None:
        self.stopping = asyncio.Event()
        self._undo_signals = _chain_stop_signals(self.stopping.set)

    def _stop(self) -> None:
        self.stopping.set()
        self._undo_signals()


class MemoryChannels(StopAware, MemoryChannelsBackend):
    """One process (SQLite): events stay in memory."""

    async def on_startup(self) -> None:
        self._start_hearing_stop()
        await super().on_startup()

    async def on_shutdown(self) -> None:
        self._stop()
        await super().on_shutdown()


class PostgresChannels(StopAware, ChannelsBackend):
    """PostgreSQL's LISTEN/NOTIFY, kept through the database's restarts.

    Litestar's own backend opens its LISTEN connection once and never again: after a restart
    of PostgreSQL the room screens heard nothing while the site answered. Here one task keeps
    the LISTEN connection: when it is lost (asyncpg's termination callback, or a check every
    CHECK_EVERY_SECONDS) it reconnects with back-off, listens again to every channel and
    pushes REFRESH so the pages catch up. Events go out through one kept connection, opened
    again when it fails; publishing never raises, because the plugin's one publishing task
    would die with the exception and no event would leave this process again.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._channels: set[str] = set()  # what the plugin's subscribers want, connected or not
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._publishing_fails = False  # logged once per outage, not once per event
        self._keeper: asyncio.Task[None] | None = None

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            dsn=self._dsn,
            timeout=DATABASE_TIMEOUT_SECONDS,
            # Named, so operators (and tests) tell these two apart in pg_stat_activity.
            server_settings={"application_name": APPLICATION_NAME},
        )

    async def on_startup(self) -> None:
        self._start_hearing_stop()
        self._queue = asyncio.Queue()
        self._listening = asyncio.Lock()  # one statement at a time on the LISTEN connection
        self._publishing = asyncio.Lock()
        self._connected = asyncio.Event()
        self._keeper = asyncio.create_task(self._keep_listening(), name="voix-live-listen")
        # Serving starts with the connection made, as Litestar's backend did; a database
        # still starting up is left to the keeper rather than holding the start.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), DATABASE_TIMEOUT_SECONDS)

    async def on_shutdown(self) -> None:
        self._stop()
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        for connection in (self._listener, self._publisher):
            if connection is not None:
                try:
                    await connection.close(timeout=DATABASE_TIMEOUT_SECONDS)
                except Exception:  # going away anyway; close() aborted it
                    connection.terminate()
        self._listener = self._publisher = None
        self._channels.clear()

    async def _keep_listening(self) -> None:
        failures = 0  # since the last connection; the outage is logged at its first
        was_lost = False
        while True:
            try:
                connection, lost = await self._listen()
            except Exception as error:  # whatever it was, try again later
                if failures == 0:
                    logger.warning(
                        "Live updates: cannot listen on PostgreSQL (%r); retrying", error
                    )
                failures += 1
                await asyncio.sleep(reconnect_delay(failures))
                continue
            if failures or was_lost:
                logger.warning("Live updates: listening on PostgreSQL again")
            failures = 0
            self._connected.set()
            for channel in self._channels:
                self._queue.put_nowait((channel, json.dumps(REFRESH).encode()))
            await self._watch(connection, lost)
            logger.warning("Live updates: the connection to PostgreSQL was lost; reconnecting")
            was_lost, failures = True, 1  # logged: its retries are not
            await asyncio.sleep(reconnect_delay(1))  # a restarting server refuses at first

    async def _listen(self) -> tuple[asyncpg.Connection, asyncio.Event]:
        connection = await self._connect()
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            async with self._listening:
                for channel in self._channels:
                    await asyncio.wait_for(
                        connection.add_listener(channel, self._notified), DATABASE_TIMEOUT_SECONDS
                    )
                self._listener = connection
        except BaseException:
            connection.terminate()
            raise
        return connection, lost

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection is gone (and makes sure it is)."""
        try:
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), CHECK_EVERY_SECONDS)
                    break
                try:
                    async with self._listening:
                        await connection.execute("SELECT 1", timeout=DATABASE_TIMEOUT_SECONDS)
                except Exception:  # any failure means: connect again
                    break
        finally:
            async with self._listening:
                if self._listener is connection:
                    self._listener = None
            connection.terminate()

    def _notified(self, connection: Any, pid: int, channel: str, payload: object) -> None:
        self._queue.put_nowait((channel, str(payload).encode()))

    async def subscribe(self, channels: Iterable[str]) -> None:
        async with self._listening:
            for channel in set(channels) - self._channels:
                self._channels.add(channel)  # listened to again by the keeper after a loss
                if self._listener is None:
                    continue
                try:
                    await asyncio.wait_for(
                        self._listener.add_listener(channel, self._notified),
                        DATABASE_TIMEOUT_SECONDS,
                    )
                except Exception:  # the keeper reconnects, listens to it
                    self._listener.terminate()
                    self._listener = None

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        async with self._listening:
            for channel in set(channels) & self._channels:
                self._channels.discard(channel)
                if self._listener is not None:
                    # A failure leaves a LISTEN on a connection about to be replaced; the
                    # channel is no longer ours, so stream_events drops what it brings.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(
                            self._listener.remove_listener(channel, self._notified),
                            DATABASE_TIMEOUT_SECONDS,
                        )

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        while True:
            channel, message = await self._queue.get()
            if channel in self._channels:  # an UNLISTEN may have crossed the notification
                yield channel, message

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        text, targets = data.decode(), list(channels)
        async with self._publishing:
            # Twice: a kept connection is found dead only when used (PostgreSQL restarted
            # since the last event), and the event then goes through a new one. Once in an
            # outage, so events queued behind do not wait twice each (and a stop, on them).
            attempts = 1 if self._publishing_fails else 2
            for attempt in range(1, attempts + 1):
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await self._connect()
                    for channel in targets:
                        await self._publisher.execute(
                            "SELECT pg_notify($1, $2)",
                            channel,
                            text,
                            timeout=DATABASE_TIMEOUT_SECONDS,
                        )
                except Exception as error:  # see the class: never raise here
                    if self._publisher is not None:
                        self._publisher.terminate()
                        self._publisher = None
                    if attempt == attempts:
                        if not self._publishing_fails:
                            logger.warning(
                                "Live updates: events cannot be published (%r); pages catch "
                                "up when PostgreSQL answers again",
                                error,
                            )
                        self._publishing_fails = True
                else:
                    if self._publishing_fails:
                        logger.warning("Live updates: publishing on PostgreSQL again")
                    self._publishing_fails = False
                    return

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError("live events keep no history")


def channels_plugin() -> ChannelsPlugin:
    url = get_settings().database_url
    backend: ChannelsBackend = (
        PostgresChannels(dsn=url)
        if url.startswith(("postgres://", "postgresql://"))
        else MemoryChannels()
    )
    return ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)


def publish(app: Litestar, channel: str, **event: Any) -> None:
    """Queues an event; delivery is best effort (a page that misses one refreshes on the next)."""
    app.plugins.get(ChannelsPlugin).publish(json.dumps(event), channels=[channel])


def _stopping(plugin: ChannelsPlugin) -> asyncio.Event:
    # The plugin keeps its backend private (Litestar's own Subscriber reads it the same way).
    backend = plugin._backend
    if not isinstance(backend, StopAware):
        raise TypeError("the channels' backend comes from channels_plugin()")
    return backend.stopping


async def events(app: Litestar, channels: Iterable[str]) -> AsyncIterator[dict[str, Any] | None]:
    """Events of these channels as they come; None when nothing came for a while (keep-alive).

    Ends when the process is stopping, so that it stops within seconds, not when the last
    screen closes; the browser then reconnects (to another process behind the proxy) and
    the page fetches its room again. REFRESH comes once, though every channel brings it.
    """
    plugin = app.plugins.get(ChannelsPlugin)
    async with plugin.start_subscription(list(channels)) as subscriber:
        stream = subscriber.iter_events()
        # Waiting on a task, not on the generator itself: a time-out must not cancel (and
        # so close) the subscriber's generator.
        pending: asyncio.Future[bytes] | None = None
        stopping: asyncio.Future[Any] = asyncio.ensure_future(_stopping(plugin).wait())
        refreshed_at = -1.0
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(stream))
                waiting: set[asyncio.Future[Any]] = {pending, stopping}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=KEEP_ALIVE_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopping in done:
                    return
                if not done:
                    yield None
                    continue
                message, pending = pending.result(), None
                event = json.loads(message)
                if event == REFRESH:
                    now = asyncio.get_running_loop().time()
                    if now - refreshed_at < 1:
                        continue
                    refreshed_at = now
                yield event
        finally:
            stopping.cancel()
            if pending is not None:
                pending.cancel()
