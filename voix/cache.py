"""What pages compute again and again, kept in the process: bounded, and keyed on what it depends
on (a table's revision: tables/revision.py), so that an entry is never stale, only unused.

A time limit covers what no revision records: time itself (a meeting starts, an answer becomes
overdue, a vote's closing time passes) and the live turnout of open votes.

Each worker process keeps its own: nothing to share, nothing to invalidate across processes or
replicas, since a change shows as a new key in every one of them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from contextlib import suppress
from typing import Any, TypeVar, cast

from voix import db

T = TypeVar("T")

ENTRIES = 1024
BYTES = 20 * 1024 * 1024  # at most this much kept per process, as Python counts it
# Entries past their time are swept out when something is kept, at most this often (a sweep
# reads every entry: on every put it cost a casting ballot 7 % of its CPU, issue 15).
SWEEP_SECONDS = 1.0
LARGEST = BYTES // 16  # an entry bigger than this is not kept: it would push out dozens


class _BuildFailed(Exception):
    """What those waiting for a build are told when it failed or its request went away."""


def size_of(value: Any) -> int:
    """The bytes a value holds with everything it refers to (each object counted once), as
    sys.getsizeof counts them: what keeping it costs."""
    seen: set[int] = set()
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.append(vars(item))
    return total


class Cache:
    """Least recently used entries go first, when there are more than `size` of them or they
    hold more than `budget` bytes; each entry may expire, and goes when found expired."""

    def __init__(self, size: int = ENTRIES, budget: int = BYTES) -> None:
        self.size = size
        self.budget = budget
        self._entries: OrderedDict[Hashable, tuple[float, Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._next_sweep = 0.0
        self._building: dict[Hashable, asyncio.Future[Any]] = {}

    def get(self, key: Hashable) -> Any | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        if found[0] < time.monotonic():
            self._drop(key)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[1]

    def holds(self, key: Hashable, value: Any) -> bool:
        """Whether `value` itself is what is kept under `key` (not counted as a hit or a miss)."""
        found = self._entries.get(key)
        return found is not None and found[1] is value and found[0] >= time.monotonic()

    def put(
        self, key: Hashable, value: Any, seconds: float = 3600.0, largest: int = LARGEST
    ) -> None:
        """Keeps `value` `seconds`; none: not kept (what was kept under `key` goes). A value
        over `largest` bytes is not kept either."""
        if key in self._entries:
            self._drop(key)
        if seconds <= 0:
            return
        size = size_of(value)
        if size > min(largest, self.budget):
            return  # served as built, not kept
        now = time.monotonic()
        self._entries[key] = (now + seconds, value, size)
        self.bytes += size
        if now >= self._next_sweep:  # at most once a second: a sweep reads every entry
            self._next_sweep = now + SWEEP_SECONDS
            for old in [k for k, (until, _, _) in self._entries.items() if until < now]:
                self._drop(old)
        while len(self._entries) > self.size or self.bytes > self.budget:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        _, _, size = self._entries.pop(key)
        self.bytes -= size

    async def get_or_build(
        self,
        key: Hashable,
        build: Callable[[], Awaitable[T]],
        seconds: float | Callable[[T], float] = 3600.0,
    ) -> T:
        """The entry, or what `build` makes of it, kept `seconds` (or as long as `seconds`
        says of what was built). One build at a time per key: a request that finds the key
        being built waits for that build rather than start its own. When the table's sidebar
        passed its time limit, every request then in a worker (ten, at 20 connections on two
        workers) missed it at once and built it ten times over, each with its queries and its
        map: the lists' p99 went from ~60 to 230-330 ms at those moments (issue 15). If the
        build fails or its request goes away, those waiting build it themselves."""
        found = self.get(key)
        if found is not None:
            return found
        if db.in_transaction():
            # Read inside a transaction: neither kept nor shared. What it sees may be rolled
            # back, and the revision it is keyed on (bumped by that same transaction) then
            # reused by the next change, which would find this entry.
            return await build()
        if (building := self._building.get(key)) is not None:
            with suppress(_BuildFailed):
                return cast("T", await asyncio.shield(building))
            found = self.get(key)
            if found is not None:
                return found
            return await build()  # the first build failed: this one may not
        building = asyncio.get_running_loop().create_future()
        # Read here if nobody waits, so that asyncio does not warn of an unread failure.
        building.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._building[key] = building
        try:
            found = await build()
        except BaseException:
            building.set_exception(_BuildFailed())
            raise
        finally:
            del self._building[key]
        building.set_result(found)  # before anything else may raise: nobody waits forever
        self.put(key, found, seconds(found) if callable(seconds) else seconds)
        return found

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


pages = Cache()
# What one reader alone sees (their header: their name, their unread count), apart from `pages`
# so that many readers cannot push out what everyone shares.
personal = Cache(size=512, budget=2 * 1024 * 1024)
