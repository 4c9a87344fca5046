"""Live updates through Litestar Channels.

On PostgreSQL the channels are PostgreSQL's own LISTEN/NOTIFY, so an event published by one
app process reaches the pages held open by every other; on SQLite (one process) they live
in memory. Events carry no personal data, only what changed: pages fetch the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend

from voix.settings import get_settings

KEEP_ALIVE_SECONDS = 20  # a comment line this often keeps proxies from closing the stream


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
