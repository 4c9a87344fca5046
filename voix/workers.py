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
import gc
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from voix.forms import UserError, parse_int
from voix.i18n import N_

T = TypeVar("T")

BUSY = N_("The server is busy preparing other documents. Please try again in a minute.")
RETRY_AFTER_SECONDS = 60

# Imported by each worker as it starts (see warm_up), so the first PDF, map or voice note it
# makes does not also pay for loading WeasyPrint, its fonts, folium or PyAV. The web process
# imports none of these: its modules import them when first needed (exports.pdf_engine), so
# naming them here is what loads them ahead.
PRELOAD = (
    "exports.pdf",
    "exports.pdf_engine",
    "maps.interactive",
    "maps.static",
    "folium",
    "meetings.services",
    "proposals.media",
    "av",
    "votes.sealing",
)

logger = logging.getLogger("voix")


class Busy(UserError):
    def __init__(self) -> None:
        super().__init__(BUSY, status_code=503)
        self.retry_after_seconds = RETRY_AFTER_SECONDS


def _setting(name: str, default: int) -> int:
    return parse_int(os.environ.get(name), min=1) or default


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
                max_workers=size(),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(PRELOAD,),
            )
        return _pool


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent is gone
        os._exit(0)


def _start_worker(modules: tuple[str, ...]) -> None:
    # A worker holds its end of the job queue open itself, so it never notices that the app
    # died without a clean shutdown (killed, out of memory): it would idle on, forever.
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    # As in the web process (voix.asgi): no collection while preloading, then what it loaded is
    # frozen, out of the collector's full passes during the jobs.
    gc.disable()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            # Not fatal here: a job needing the module raises the same error, and only it fails
            # (an initializer that raises would break the pool for every job).
            logger.exception("Worker could not preload %s", name)
    gc.freeze()
    gc.enable()


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool  # noqa: PLW0603
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def _release(_job: object = None) -> None:
    global _in_flight  # noqa: PLW0603
    with _lock:
        _in_flight -= 1


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` in a worker process; Busy (503) when the queue is full."""
    return await _run(capacity(), function, args, kwargs)


async def run_now(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As `run`, but Busy unless a worker is free for it at once: for work the caller would
    rather do itself than wait behind others' (a table's map, ~15 ms, behind a PDF's seconds)."""
    return await _run(size(), function, args, kwargs)


async def _run(limit: int, function: Callable[..., T], args: Any, kwargs: Any) -> T:
    global _in_flight  # noqa: PLW0603
    with _lock:
        if _in_flight >= limit:
            raise Busy
        _in_flight += 1
    executor = _executor()
    try:
        try:
            job: Future[T] = executor.submit(function, *args, **kwargs)
        except BrokenProcessPool:
            # A worker died while the pool was idle (killed, out of memory): the pool refuses
            # every job from then on, so it is replaced here, and the job sent to the new one.
            _discard(executor)
            executor = _executor()
            job = executor.submit(function, *args, **kwargs)
    except BaseException:
        _release()
        raise
    # The slot is freed when the job ends, not when its caller stops waiting: a request whose
    # client went away leaves its job running (a process cannot be interrupted mid-job), and
    # that job must still count, or disconnecting clients would queue work without bound.
    job.add_done_callback(_release)
    try:
        return await asyncio.wrap_future(job)
    except BrokenProcessPool:
        # A worker died (killed, out of memory): the next job gets a new pool.
        _discard(executor)
        raise


def warm_up() -> None:
    """Starts the worker processes (which preload PRELOAD) ahead of the first job; at start-up.

    Returns at once: the processes start and import in the background.
    """
    executor = _executor()
    for _ in range(size()):
        executor.submit(int)
    # What the app itself imports where first needed (not at start-up, issue 15), imported
    # here in the background so that the first request needing it does not wait for it.
    threading.Thread(target=_import_later, name="import-later", daemon=True).start()


# Imported by the app process after start-up rather than at it: shapely and numpy (0.2 s),
# for the districts (maps.services).
IMPORT_LATER = ("shapely.geometry", "shapely.validation")


def _import_later() -> None:
    for name in IMPORT_LATER:
        try:
            importlib.import_module(name)
        except Exception:  # the code that needs it raises the same error, where it is needed
            logger.exception("Could not import %s", name)


@atexit.register
def shutdown() -> None:
    """Stops the pool (at app shutdown and exit); jobs still waiting are cancelled.

    It waits for the running ones: without waiting, the workers outlive the app (Python 3.11).
    With no job running or waiting, the workers are stopped instead of waited for: they may
    still be preloading (warm_up), and a stop soon after a start would wait out WeasyPrint's
    and folium's imports, seconds, for nothing.
    """
    global _pool
    with _lock:
        pool, _pool = _pool, None
        idle = _in_flight == 0  # run() counts a job before it can reach this pool
    if pool is None:
        return
    if idle:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
