"""Background work (votes closing at their time, a published brief's files) kept in the database,
run once, when due, by whichever replica claims it first.

Why a table of our own rather than a library. The default install is one process on SQLite with
nothing to set up, and the same code runs and is tested on SQLite and PostgreSQL:
- procrastinate is the mature choice on PostgreSQL (LISTEN/NOTIFY wake-ups, periodic tasks,
  locks, an admin shell, Django-free), but it speaks to PostgreSQL only, through psycopg 3 — a
  second driver and pool beside asyncpg — so SQLite installs would need a second queue anyway,
  and the two would be tested apart.
- saq and arq keep their queue in Redis: one more service for an association's server to run,
  back up and watch, and a queue that a database backup does not contain.
- This module is one table (jobs.models.Job) and a few statements both engines run. A claim is
  one UPDATE of due rows to "running" with a lease: PostgreSQL picks them with
  `FOR UPDATE SKIP LOCKED` (replicas never wait on each other or take the same row); SQLite has
  one writer, so the same conditional UPDATE inside `BEGIN IMMEDIATE` cannot interleave.
  A job is enqueued in the caller's transaction, on the caller's connection: it exists exactly
  when the data that asked for it was committed (a library on its own connection cannot offer
  that without two-phase tricks).

What we give up by not using procrastinate: instant wake-up across replicas (we poll every
VOIX_JOBS_POLL seconds; the replica that enqueues wakes its own runner at once), cron-like
schedules (only "every N seconds"), job cancellation and an operator shell (failed jobs are
rows: `SELECT kind, attempts, last_error FROM job WHERE status = 'failed'`), per-queue
priorities, and years of other people's production bugs already fixed.

Guarantees. A job runs once per claim, and a claim is exclusive while its lease lasts; the
runner renews the lease while the job runs. If the process dies (kill -9, power), the lease
expires and another runner runs the job again: delivery is at least once, so handlers are
written to be repeatable (a vote closes with a conditional UPDATE; a file is stored under a
unique key). A failing job is retried with exponential back-off, then marked failed after
`max_attempts` (a process dying mid-run counts as an attempt). The runner only waits: CPU
work inside a handler still goes to voix.workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from piccolo.querystring import QueryString

from jobs.models import DONE, FAILED, QUEUED, RUNNING, Job
from voix import db
from voix.forms import parse_int

logger = logging.getLogger("voix")

Handler = Callable[[dict[str, Any]], Awaitable[None]]
H = TypeVar("H", bound=Handler)

MAX_ATTEMPTS = 5
LEASE_SECONDS = 120.0  # renewed every third of it while the job runs
# A job still running after this is stopped and counts as a failed attempt: a handler stuck for
# ever (a render that never ends, a call without a timeout) would renew its lease for ever and
# hold its slot, and the votes due to close behind it would wait.
TIME_LIMIT_SECONDS = 600.0
BACKOFF_SECONDS = 10.0  # after the first failure; doubled each time
BACKOFF_MAX_SECONDS = 3600.0
KEEP_DONE = timedelta(days=7)  # failed jobs stay until someone looks at them
PRUNE_EVERY = timedelta(hours=1)

# What this process knows how to run, filled by the domains' @handler declarations.
HANDLERS: dict[str, Handler] = {}
# Kinds run every so many seconds: one row each, put back in the queue after each run.
RECURRING: dict[str, float] = {}


def handler(kind: str, *, every: float | None = None) -> Callable[[H], H]:
    """Declares the coroutine that runs jobs of `kind` (called with the job's payload);
    `every`: the job also runs by itself every so many seconds, on one replica at a time."""

    def register(function: H) -> H:
        HANDLERS[kind] = function
        if every is not None:
            RECURRING[kind] = every
        return function

    return register


def _now() -> datetime:
    return datetime.now(UTC)


def _recurring_key(kind: str) -> str:
    return f"every:{kind}"


async def enqueue(
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    key: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> int | None:
    """Adds a job, due at `run_at` (now by default); the new job's id.

    None when a job with the same `key` is still queued or running: it is not added twice,
    across replicas too (a unique index decides). Inside a transaction, the job is added
    with it, or not at all.
    """
    now = _now()
    added = await (
        Job.insert(
            Job(
                kind=kind,
                payload=json.dumps(dict(payload or {})),
                key=key,
                pending_key=key,
                status=QUEUED,
                run_at=run_at or now,
                max_attempts=max_attempts,
                created_at=now,
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(Job.id)
    )
    for runner in _runners:
        runner.wake()
    return added[0]["id"] if added else None


async def depth() -> int:
    """Jobs due now and not yet claimed: the queue's backlog (the /metrics gauge)."""
    return await Job.count().where((Job.status == QUEUED) & (Job.run_at <= _now()))


def backoff(attempts: int, base: float = BACKOFF_SECONDS) -> float:
    """Seconds before another try, after `attempts` failed ones: base, 2·base, 4·base…"""
    return min(base * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


_runners: set[Runner] = set()


class Runner:
    """Claims due jobs and runs them, `concurrency` at a time, as asyncio tasks.

    Every statement goes through its own `engine`, so two runners on two engines behave as two
    replicas (what the tests check). `handlers` defaults to every declared handler.
    """

    def __init__(
        self,
        engine: db.SQLite | db.Postgres | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        recurring: Mapping[str, float] | None = None,
        concurrency: int = 2,
        lease: float = LEASE_SECONDS,
        poll: float = 2.0,
        backoff_base: float = BACKOFF_SECONDS,
        time_limit: float = TIME_LIMIT_SECONDS,
        name: str | None = None,
    ) -> None:
        self.engine = engine or db.engine()
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.recurring = dict(
            RECURRING if recurring is None and handlers is None else recurring or {}
        )
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.backoff_base = backoff_base
        self.time_limit = time_limit
        # Who holds a claim, for the operator reading the table (a container's hostname
        # tells the replica) and for the runner, which writes only its own claims' ends.
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[int, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._pruned_at = datetime.min.replace(tzinfo=UTC)
        self._claim_failing = False

    async def _sql(self, template: str, *args: Any) -> list[Any]:
        return list(await self.engine.run_querystring(QueryString(template, *args)))

    # Claiming -----------------------------------------------------------------------------

    def _due(self, now: datetime) -> tuple[str, list[Any]]:
        kinds = sorted(self.handlers)
        marks = ", ".join("{}" for _ in kinds)
        condition = (
            f"kind IN ({marks}) AND ((status = {{}} AND run_at <= {{}})"
            " OR (status = {} AND locked_until < {}))"
        )
        return condition, [*kinds, QUEUED, now, RUNNING, now]

    async def claim(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` due jobs, now this runner's for one lease: queued jobs whose time has
        come and jobs whose runner let its lease expire (it died)."""
        if not self.handlers or limit < 1:
            return []
        now = _now()
        condition, args = self._due(now)
        # A plain read first: on SQLite an idle queue never takes the write lock.
        if not await self._sql(f"SELECT id FROM job WHERE {condition} LIMIT 1", *args):  # noqa: S608
            return []
        skip_locked = "" if isinstance(self.engine, db.SQLite) else " FOR UPDATE SKIP LOCKED"
        async with self.engine.write_transaction():
            # A job whose runner died on every attempt is not tried again for ever.
            await self._sql(
                "UPDATE job SET status = {}, pending_key = NULL, locked_by = NULL,"
                " locked_until = NULL, finished_at = {}, last_error = {}"
                " WHERE status = {} AND locked_until < {} AND attempts >= max_attempts",
                FAILED,
                now,
                "the process running it stopped before it ended (lease expired)",
                RUNNING,
                now,
            )
            # Our own text around parameters: the kinds are placeholders too.
            rows = await self._sql(
                "UPDATE job SET status = {}, locked_by = {}, locked_until = {},"  # noqa: S608
                " attempts = attempts + 1"
                f" WHERE id IN (SELECT id FROM job WHERE {condition}"
                f" ORDER BY run_at, id LIMIT {{}}{skip_locked})"
                " RETURNING id, kind, payload, attempts, max_attempts",
                RUNNING,
                self.name,
                now + timedelta(seconds=self.lease),
                *args,
                limit,
            )
        return [dict(row) for row in rows]

    # Running ------------------------------------------------------------------------------

    async def _renew(self, job_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(Exception):  # a missed renewal is retried next time
                await self._sql(
                    "UPDATE job SET locked_until = {} WHERE id = {} AND locked_by = {}",
                    _now() + timedelta(seconds=self.lease),
                    job_id,
                    self.name,
                )

    async def execute(self, job: dict[str, Any]) -> None:
        """Runs a claimed job and records how it ended."""
        renewing = asyncio.ensure_future(self._renew(job["id"]))
        try:
            # A time-out inside ends as TimeoutError here, a failure like any other; a
            # cancellation from outside (stopping) still arrives as CancelledError.
            async with asyncio.timeout(self.time_limit):
                await self.handlers[job["kind"]](json.loads(job["payload"]))
        except asyncio.CancelledError:
            # Stopping: the job goes back to the queue at once for another replica, this
            # interrupted try not counted.
            await asyncio.shield(self._release(job))
            raise
        except Exception as error:
            await self._failed(job, error)
        else:
            await self._succeeded(job)
        finally:
            renewing.cancel()

    # Each end is written only while the claim is still this runner's (`locked_by`): after a
    # lost lease, the runner that took the job over decides.

    async def _release(self, job: dict[str, Any]) -> None:
        await self._requeue(job, _now(), job.get("last_error", ""), job["attempts"] - 1)

    async def _requeue(self, job: dict[str, Any], at: datetime, error: str, attempts: int) -> None:
        await self._sql(
            "UPDATE job SET status = {}, locked_by = NULL, locked_until = NULL, run_at = {},"
            " last_error = {}, attempts = {} WHERE id = {} AND locked_by = {}",
            QUEUED,
            at,
            error,
            attempts,
            job["id"],
            self.name,
        )

    async def _finish(self, job: dict[str, Any], status: str, error: str) -> None:
        await self._sql(
            "UPDATE job SET status = {}, pending_key = NULL, locked_by = NULL,"
            " locked_until = NULL, finished_at = {}, last_error = {}"
            " WHERE id = {} AND locked_by = {}",
            status,
            _now(),
            error,
            job["id"],
            self.name,
        )

    async def _succeeded(self, job: dict[str, Any]) -> None:
        every = self.recurring.get(job["kind"])
        if every is None:
            await self._finish(job, DONE, "")
        else:
            await self._requeue(job, _now() + timedelta(seconds=every), "", 0)

    async def _failed(self, job: dict[str, Any], error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"[:2000]
        every = self.recurring.get(job["kind"])
        if job["attempts"] < job["max_attempts"]:
            delay = backoff(job["attempts"], self.backoff_base)
            logger.warning(
                "Job %s (%s) failed, try %s of %s; again in %.0f s: %s",
                job["id"], job["kind"], job["attempts"], job["max_attempts"], delay, text,
            )  # fmt: skip
            await self._requeue(job, _now() + timedelta(seconds=delay), text, job["attempts"])
        elif every is not None:
            logger.error(
                "Job %s (%s) failed %s times: %s", job["id"], job["kind"], job["attempts"], text
            )
            await self._requeue(job, _now() + timedelta(seconds=every), text, 0)
        else:
            logger.error(
                "Job %s (%s) failed for good after %s tries",
                job["id"], job["kind"], job["attempts"], exc_info=error,
            )  # fmt: skip
            await self._finish(job, FAILED, text)

    async def run_due(self) -> int:
        """Runs every job due now, in batches of `concurrency`, and returns how many it ran
        (what the tests and a one-off command call; the app's runner loops instead)."""
        ran = 0
        while batch := await self.claim(self.concurrency):
            await asyncio.gather(*(self.execute(job) for job in batch))
            ran += len(batch)
        return ran

    # The loop started with the app --------------------------------------------------------

    def wake(self) -> None:
        """Look for due jobs now rather than at the next poll (safe from any thread)."""
        if self._event_loop is not None and not self._event_loop.is_closed():
            self._event_loop.call_soon_threadsafe(self._wakeup.set)

    async def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._stopping.clear()
        for kind in self.recurring:
            with contextlib.suppress(Exception):  # logged by the loop, which retries claims
                await self._enqueue_recurring(kind)
        self._loop_task = asyncio.ensure_future(self._loop())
        _runners.add(self)

    async def _enqueue_recurring(self, kind: str) -> None:
        # Each replica asks; the key lets one row exist.
        now = _now()
        await self._sql(
            "INSERT INTO job (kind, payload, key, pending_key, status, run_at, attempts,"
            " max_attempts, last_error, created_at) VALUES ({}, {}, {}, {}, {}, {}, 0, {}, '', {})"
            " ON CONFLICT DO NOTHING",
            kind,
            "{}",
            _recurring_key(kind),
            _recurring_key(kind),
            QUEUED,
            now,
            MAX_ATTEMPTS,
            now,
        )

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            claimed = await self._claim_logged(self.concurrency - len(self._running))
            for job in claimed:
                task = asyncio.ensure_future(self.execute(job))
                self._running[job["id"]] = task
                task.add_done_callback(functools.partial(self._done, job["id"]))
            await self._prune()
            if claimed and len(self._running) < self.concurrency:
                continue  # there may be more due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll)

    def _done(self, job_id: int, _task: object) -> None:
        self._running.pop(job_id, None)
        self._wakeup.set()  # a slot is free

    async def _claim_logged(self, limit: int) -> list[dict[str, Any]]:
        """Claims, surviving a database outage: the cause is logged once, not every poll."""
        try:
            claimed = await self.claim(limit)
        except Exception:
            if not self._claim_failing:
                logger.exception("The job queue cannot reach its table; retrying every poll")
            self._claim_failing = True
            return []
        if self._claim_failing:
            logger.info("The job queue reaches its table again")
        self._claim_failing = False
        return claimed

    async def _prune(self) -> None:
        now = _now()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        with contextlib.suppress(Exception):
            await self._sql(
                "DELETE FROM job WHERE status = {} AND finished_at < {}", DONE, now - KEEP_DONE
            )

    async def stop(self, grace: float = 5.0) -> None:
        """Stops claiming, lets running jobs end for `grace` seconds, then interrupts them
        (they go back to the queue, for another replica or the next start)."""
        _runners.discard(self)
        self._stopping.set()
        self._wakeup.set()
        if self._loop_task is not None:
            with contextlib.suppress(Exception):
                await self._loop_task
        running = list(self._running.values())
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


_app_runner: Runner | None = None


def enabled() -> bool:
    """On unless VOIX_JOBS=0; off in the test environment unless VOIX_JOBS=1 (tests run
    jobs themselves, when they mean to)."""
    default = "0" if os.environ.get("VOIX_ENV") == "test" else "1"
    return os.environ.get("VOIX_JOBS", default) == "1"


async def start() -> None:
    """The app's start-up: one runner per process (after the database engine starts)."""
    global _app_runner  # noqa: PLW0603 - one runner per process
    if not enabled() or _app_runner is not None:
        return
    _app_runner = Runner(
        concurrency=parse_int(os.environ.get("VOIX_JOBS_CONCURRENCY"), min=1) or 2,
        poll=parse_int(os.environ.get("VOIX_JOBS_POLL"), min=1) or 2,
    )
    await _app_runner.start()


async def stop() -> None:
    """The app's shutdown (before the database engine stops)."""
    global _app_runner
    runner, _app_runner = _app_runner, None
    if runner is not None:
        await runner.stop()
