"""What pages compute again and again, kept in the process: bounded, and keyed on what it depends
on (a table's revision: tables/revision.py), so that an entry is never stale, only unused.

A time limit covers what no revision records: time itself (a meeting starts, an answer becomes
overdue, a vote's closing time passes) and the live turnout of open votes.

Each worker process keeps its own: nothing to share, nothing to invalidate across processes or
replicas, since a change shows as a new key in every one of them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

ENTRIES = 1024  # at most ~20 MB of pages per process


class Cache:
    """Least recently used entries go first; each entry may expire."""

    def __init__(self, size: int = ENTRIES) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[1]

    def put(self, key: Hashable, value: Any, seconds: float = 3600.0) -> None:
        self._entries[key] = (time.monotonic() + seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    async def get_or_build(
        self, key: Hashable, build: Callable[[], Awaitable[T]], seconds: float = 3600.0
    ) -> T:
        """The entry, or what `build` makes of it (two requests at once may both build it:
        the result is the same, and nothing waits on a lock)."""
        found = self.get(key)
        if found is None:
            found = await build()
            self.put(key, found, seconds)
        return found

    def clear(self) -> None:
        self._entries.clear()


pages = Cache()
