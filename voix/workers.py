"""CPU-bound work (PDF, images, audio, Markdown, maps) in worker processes.

The event loop only waits. Threads do not help here: WeasyPrint, Pillow's Python parts and
folium hold the GIL, so a PDF rendered "beside" the loop still stalls every request. A pool
of processes does not share that lock.

The queue is bounded: when `VOIX_CPU_QUEUE` jobs are already running or waiting, a new one is
refused at once with 503 (and Retry-After) instead of piling up behind them, so a burst of
heavy requests cannot make every other page wait minutes.

Jobs are plain top-level functions with picklable arguments (dicts, strings, bytes, dates).
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, TypeVar

from voix.forms import UserError
from voix.i18n import N_

T = TypeVar("T")

BUSY = N_("The server is busy preparing other documents. Please try again in a minute.")
RETRY_AFTER_SECONDS = 30


class Busy(UserError):
    def __init__(self) -> None:
        super().__init__(BUSY, status_code=503)
        self.retry_after_seconds = RETRY_AFTER_SECONDS


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else default


_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_in_flight = 0


def size() -> int:
    return _setting("VOIX_CPU_WORKERS", max(1, min(4, os.cpu_count() or 1)))


def capacity() -> int:
    return _setting("VOIX_CPU_QUEUE", 4 * size())


def _executor() -> ProcessPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _lock:
        if _pool is None:
            # "spawn": a fork of a process holding an event loop, database connections and
            # threads is not safe; a fresh interpreter imports only what the job needs.
            _pool = ProcessPoolExecutor(
                max_workers=size(), mp_context=multiprocessing.get_context("spawn")
            )
        return _pool


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool  # noqa: PLW0603
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` in a worker process; Busy (503) when the queue is full."""
    global _in_flight  # noqa: PLW0603
    with _lock:
        if _in_flight >= capacity():
            raise Busy
        _in_flight += 1
    try:
        executor = _executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, partial(function, *args, **kwargs)
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next job gets a new pool.
            _discard(executor)
            raise
    finally:
        with _lock:
            _in_flight -= 1


def warm_up() -> None:
    """Starts the worker processes ahead of the first job (optional; used at start-up)."""
    executor = _executor()
    for _ in range(size()):
        executor.submit(int)


@atexit.register
def _shutdown() -> None:
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
