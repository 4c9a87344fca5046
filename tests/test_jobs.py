"""The job queue (voix/jobs.py): each job once across replicas, retried, recovered, stopped.

"Replicas" here are runners on engines of their own (their own pools or SQLite connections)
on the one test database, and for a process that dies, a real process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from exports import compose, stored
from jobs.models import DONE, FAILED, QUEUED, RUNNING, Job
from proposals.models import ADOPTED
from tests.factories import add_draft, add_proposal, build_world, post_form, sign_in
from tests.test_votes import open_vote_over
from voix import db, jobs
from voix.app import create_app
from voix.settings import PROJECT_ROOT
from votes import closing
from votes.models import CLOSED, OPEN, Vote


async def _nothing(_payload: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def engines() -> AsyncIterator[list[db.SQLite | db.Postgres]]:
    """Two engines of their own on the test database: two replicas' connections."""
    made = [db.engine_from_url(os.environ["DATABASE_URL"]) for _ in range(2)]
    for engine in made:
        await engine.start()
    yield made
    for engine in made:
        await engine.stop()


async def job(job_id: int | None) -> dict[str, Any]:
    assert job_id is not None
    row = await Job.select().where(Job.id == job_id).first()
    assert row is not None
    return row


async def wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_key_keeps_a_second_job_out_until_the_first_is_done() -> None:
    first = await jobs.enqueue("test.noop", {"n": 1}, key="same")
    assert first is not None
    assert await jobs.enqueue("test.noop", {"n": 2}, key="same") is None
    assert await jobs.enqueue("test.noop", {"n": 3}) is not None  # no key: no dedupe
    assert await Job.count() == 2

    assert await jobs.Runner(handlers={"test.noop": _nothing}).run_due() == 2
    assert (await job(first))["status"] == DONE
    again = await jobs.enqueue("test.noop", {"n": 4}, key="same")
    assert again is not None
    assert again != first


async def test_a_job_runs_when_due_with_its_payload_and_is_marked_done() -> None:
    seen: list[dict[str, Any]] = []

    async def record(payload: dict[str, Any]) -> None:
        seen.append(payload)

    later = await jobs.enqueue(
        "test.record", {"when": "later"}, run_at=datetime.now(UTC) + timedelta(hours=1)
    )
    now = await jobs.enqueue("test.record", {"when": "now", "ids": [1, 2]})
    runner = jobs.Runner(handlers={"test.record": record})
    assert await runner.run_due() == 1
    assert seen == [{"when": "now", "ids": [1, 2]}]
    done = await job(now)
    assert (done["status"], done["attempts"], done["locked_by"]) == (DONE, 1, None)
    assert done["finished_at"] is not None
    assert (await job(later))["status"] == QUEUED
    # A kind this runner has no handler for is left for one that has.
    await jobs.enqueue("test.other")
    assert await runner.run_due() == 0
    assert await jobs.depth() == 1


async def test_depth_counts_the_jobs_due_and_not_claimed() -> None:
    assert await jobs.depth() == 0
    await jobs.enqueue("test.noop")
    await jobs.enqueue("test.noop")
    await jobs.enqueue("test.noop", run_at=datetime.now(UTC) + timedelta(minutes=5))
    assert await jobs.depth() == 2
    runner = jobs.Runner(handlers={"test.noop": _nothing})
    assert len(await runner.claim(1)) == 1
    assert await jobs.depth() == 1


async def test_concurrent_claims_by_two_replicas_never_take_one_job_twice(
    engines: list[db.SQLite | db.Postgres],
) -> None:
    ids = {await jobs.enqueue("test.noop", {"n": n}) for n in range(60)}
    replicas = [jobs.Runner(engine, handlers={"test.noop": _nothing}) for engine in engines]
    claims = await asyncio.gather(*(replicas[i % 2].claim(3) for i in range(40)))
    claimed = [row["id"] for batch in claims for row in batch]
    assert len(claimed) == len(set(claimed)) == 60
    assert set(claimed) == ids
    owners = {row["locked_by"] for row in await Job.select(Job.locked_by)}
    assert owners == {replicas[0].name, replicas[1].name}


async def test_two_running_replicas_run_each_job_exactly_once(
    engines: list[db.SQLite | db.Postgres],
) -> None:
    ran: dict[str, list[int]] = {"a": [], "b": []}

    def handler_of(name: str) -> jobs.Handler:
        async def run(payload: dict[str, Any]) -> None:
            ran[name].append(payload["n"])
            await asyncio.sleep(0.02)  # as a job that waits on something

        return run

    replicas = [
        jobs.Runner(engine, handlers={"test.count": handler_of(name)}, concurrency=3, poll=0.05)
        for engine, name in zip(engines, ran, strict=True)
    ]
    for replica in replicas:
        await replica.start()
    try:
        for n in range(80):
            await jobs.enqueue("test.count", {"n": n})

        async def all_done() -> bool:
            return await Job.count().where(Job.status == DONE) == 80

        await wait_for(all_done)
    finally:
        for replica in replicas:
            await replica.stop()
    assert sorted(ran["a"] + ran["b"]) == list(range(80))
    assert ran["a"]
    assert ran["b"]
    assert {row["attempts"] for row in await Job.select(Job.attempts)} == {1}


CHILD = """
import asyncio, sys
from voix import db, jobs

async def hang(payload):
    print("started", flush=True)
    await asyncio.sleep(3600)

async def main():
    await db.engine().start()
    await jobs.Runner(handlers={"test.hang": hang}, lease=float(sys.argv[1])).run_due()

asyncio.run(main())
"""


async def test_a_job_whose_process_died_runs_again_once_its_lease_expires() -> None:
    job_id = await jobs.enqueue("test.hang", {"n": 1})
    lease = 2.0
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(lease),
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        assert line.strip() == b"started"
    finally:
        child.send_signal(signal.SIGKILL)  # as kill -9: no shutdown, no release
        await asyncio.wait_for(child.wait(), timeout=30)
    assert (await job(job_id))["status"] == RUNNING

    ran: list[dict[str, Any]] = []

    async def record(payload: dict[str, Any]) -> None:
        ran.append(payload)

    survivor = jobs.Runner(handlers={"test.hang": record})
    assert await survivor.run_due() == 0  # the lease still runs: nobody takes the job
    claimed_until = db.utc((await job(job_id))["locked_until"])
    await asyncio.sleep(max(0.0, (claimed_until - datetime.now(UTC)).total_seconds()) + 0.2)
    assert await survivor.run_due() == 1
    assert ran == [{"n": 1}]
    again = await job(job_id)
    assert (again["status"], again["attempts"]) == (DONE, 2)


async def test_a_job_whose_runners_kept_dying_fails_instead_of_running_for_ever() -> None:
    job_id = await jobs.enqueue("test.noop", max_attempts=1)
    dying = jobs.Runner(handlers={"test.noop": _nothing}, lease=0.1)
    assert len(await dying.claim(1)) == 1  # and never finishes it
    await asyncio.sleep(0.3)
    assert await jobs.Runner(handlers={"test.noop": _nothing}).run_due() == 0
    failed = await job(job_id)
    assert (failed["status"], failed["attempts"], failed["pending_key"]) == (FAILED, 1, None)
    assert "lease expired" in failed["last_error"]


async def test_a_failing_job_is_retried_then_marked_failed() -> None:
    tries: list[int] = []

    async def boom(payload: dict[str, Any]) -> None:
        tries.append(payload["n"])
        raise RuntimeError("the printer is on fire")

    job_id = await jobs.enqueue("test.boom", {"n": 7}, key="boom", max_attempts=3)
    runner = jobs.Runner(handlers={"test.boom": boom}, backoff_base=0)
    assert await runner.run_due() == 3
    assert tries == [7, 7, 7]
    failed = await job(job_id)
    assert (failed["status"], failed["attempts"]) == (FAILED, 3)
    assert failed["last_error"] == "RuntimeError: the printer is on fire"
    assert failed["finished_at"] is not None
    assert await runner.run_due() == 0  # failed for good
    assert await jobs.enqueue("test.boom", {"n": 8}, key="boom") is not None  # may be asked again


async def test_a_failed_try_waits_its_back_off() -> None:
    succeed = False

    async def flaky(_payload: dict[str, Any]) -> None:
        if not succeed:
            raise ValueError("not yet")

    job_id = await jobs.enqueue("test.flaky")
    runner = jobs.Runner(handlers={"test.flaky": flaky}, backoff_base=60)
    before = datetime.now(UTC)
    assert await runner.run_due() == 1
    waiting = await job(job_id)
    assert (waiting["status"], waiting["attempts"], waiting["locked_by"]) == (QUEUED, 1, None)
    assert waiting["last_error"] == "ValueError: not yet"
    delay = (db.utc(waiting["run_at"]) - before).total_seconds()
    assert 59 < delay < 70
    assert await runner.run_due() == 0  # not before its time
    succeed = True
    await Job.update({Job.run_at: datetime.now(UTC)}).where(Job.id == job_id)
    assert await runner.run_due() == 1
    assert ((await job(job_id))["status"], (await job(job_id))["attempts"]) == (DONE, 2)
    assert [jobs.backoff(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert jobs.backoff(30) == jobs.BACKOFF_MAX_SECONDS


async def test_a_recurring_job_is_one_row_across_replicas_put_back_after_each_run(
    engines: list[db.SQLite | db.Postgres],
) -> None:
    ticks: list[int] = []

    async def tick(_payload: dict[str, Any]) -> None:
        ticks.append(1)

    replicas = [
        jobs.Runner(engine, handlers={"test.tick": tick}, recurring={"test.tick": 60}, poll=0.05)
        for engine in engines
    ]
    for replica in replicas:
        await replica.start()
    try:

        async def ran() -> bool:
            row = await Job.select(Job.status, Job.run_at).first()
            return bool(ticks) and row is not None and row["status"] == QUEUED

        await wait_for(ran)
        await asyncio.sleep(0.3)  # both replicas poll meanwhile
    finally:
        for replica in replicas:
            await replica.stop()
    assert ticks == [1]
    (row,) = await Job.select()
    assert (row["status"], row["attempts"], row["key"]) == (QUEUED, 0, "every:test.tick")
    assert 55 < (db.utc(row["run_at"]) - datetime.now(UTC)).total_seconds() <= 60


async def test_stopping_interrupts_a_long_job_and_puts_it_back_in_the_queue() -> None:
    started = asyncio.Event()

    async def long(_payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(3600)

    job_id = await jobs.enqueue("test.long")
    runner = jobs.Runner(handlers={"test.long": long}, poll=0.05)
    await runner.start()
    await asyncio.wait_for(started.wait(), timeout=30)
    assert (await job(job_id))["status"] == RUNNING
    began = time.monotonic()
    await runner.stop(grace=0.2)
    assert time.monotonic() - began < 5
    released = await job(job_id)
    assert (released["status"], released["attempts"], released["locked_by"]) == (QUEUED, 0, None)
    assert await jobs.depth() == 1  # for the next replica, at once


async def test_the_app_runs_the_queue_from_start_up_to_shutdown(
    monkeypatch: pytest.MonkeyPatch, engine_left_unstarted: None
) -> None:
    assert not jobs.enabled()  # the suite runs jobs itself
    monkeypatch.setenv("VOIX_JOBS", "1")
    monkeypatch.setenv("VOIX_JOBS_POLL", "1")
    ran = asyncio.Event()

    async def ping(_payload: dict[str, Any]) -> None:
        ran.set()

    monkeypatch.setitem(jobs.HANDLERS, "test.ping", ping)
    app = create_app()
    async with app.lifespan():
        await jobs.enqueue("test.ping")
        await asyncio.wait_for(ran.wait(), timeout=30)
        # The votes' check is scheduled by the first replica that starts, once.
        assert await Job.count().where(Job.key == "every:votes.close_due") == 1
    assert jobs._app_runner is None
    assert await Job.count().where(Job.kind == "test.ping") == 1
    assert await Job.count().where((Job.kind == "test.ping") & (Job.status == DONE)) == 1


async def test_a_vote_nobody_reads_closes_at_its_time_through_the_queue(
    client: AsyncClient,
) -> None:
    assert jobs.RECURRING["votes.close_due"] == closing.CLOSING_CHECK_SECONDS
    world = await build_world()
    proposals = [await add_proposal(world.table_a, f"Proposition {n}") for n in range(2)]
    vote_id = await open_vote_over(client, world, proposals)
    runner = jobs.Runner(
        handlers={"votes.close_due": closing.close_due_job},
        recurring={"votes.close_due": closing.CLOSING_CHECK_SECONDS},
    )
    await jobs.enqueue("votes.close_due", key="every:votes.close_due")
    assert await runner.run_due() == 1
    assert (await Vote.select(Vote.status).where(Vote.id == vote_id).first())["status"] == OPEN
    await Vote.update({Vote.closes_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Vote.id == vote_id
    )
    await Job.update({Job.run_at: datetime.now(UTC)}).where(Job.kind == "votes.close_due")
    assert await runner.run_due() == 1
    assert (await Vote.select(Vote.status).where(Vote.id == vote_id).first())["status"] == CLOSED


async def test_publishing_queues_the_versions_other_files_and_a_job_makes_one(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs", status=ADOPTED)
    brief = await add_draft(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    published = await post_form(client, f"/briefs/{brief['slug']}/publish", {})
    assert published.status_code == 303, published.text[-2000:]
    slug = brief["slug"]
    queued = await Job.select(Job.kind, Job.key, Job.status).order_by(Job.id)
    expected = {
        f"{stored.version_key(slug, 1, variant)}:{lang}"
        for variant in stored.VARIANTS
        for lang in ("fr", "ar", "en")
    } - {f"{stored.version_key(slug, 1, 'pdf')}:fr"}  # made at publishing
    assert {row["key"] for row in queued} == expected
    assert {(row["kind"], row["status"]) for row in queued} == {
        (compose.RENDER_VERSION_FILE, QUEUED)
    }

    wanted = f"{stored.version_key(slug, 1, 'pdf')}:en"
    await Job.update({Job.run_at: datetime.now(UTC) + timedelta(days=1)}).where(Job.key != wanted)
    document = stored.version_key(slug, 1, "pdf")
    assert (document, "en") not in await stored.stored_sha256([document])
    runner = jobs.Runner(handlers={compose.RENDER_VERSION_FILE: compose.render_version_file})
    assert await runner.run_due() == 1
    assert (document, "en") in await stored.stored_sha256([document])
    # The first download serves what the job made.
    made = (await stored.stored_sha256([document]))[(document, "en")]
    download = await client.get(f"/briefs/{slug}/v/1/en.pdf")
    assert download.status_code == 200
    assert download.headers["etag"] == f'"{made}"'
