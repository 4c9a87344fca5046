"""Closing and tallying a vote of N majority-judgment ballots × K options, timed phase by phase.

    .venv/bin/python bench/close_vote.py [--ballots N] [--options K] [--sqlite] [--profile FILE]

The issue's target: a vote of 100,000 ballots × 10 options closed and tallied on PostgreSQL in
under 10 s, memory flat (no list of all ballots in Python), the tally computed in SQL.

PostgreSQL (default): a fresh database `voix_bench_close` on VOIX_BENCH_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres), dropped first and left for
inspection. --sqlite: a temporary SQLite file, removed at the end.

Setup (timed apart): a table of N members, K proposals, a majority-judgment vote opened through
votes.services.open_vote, then N participations and N ballots sealed with votes.sealing.seal
(random grades, about 5 % of marks left ungraded) written in bulk: casting N times is not what
is measured. Sealing runs in the worker pool, which leaves it started and warm, as the app's
start-up (voix.workers.warm_up) does.

Timed: votes.closing.close_vote, then votes.box.fingerprint, each with its phases; the peak
resident memory of this process during closing (VmRSS polled every 50 ms) and of the worker
processes; the SQL tally alone. Then the stored result is checked against what was sealed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from accounts.models import User
from proposals.models import DISCUSSION, Proposal
from tables.models import FACILITATOR, Membership, Organisation, Table
from tables.services import get_table_by_id
from voix import db, workers
from voix.permissions import Principal
from votes import box, closing, sealing
from votes.models import Ballot, SealedBallot, Vote
from votes.scales import MAJORITY_JUDGMENT, SCALES, SEVEN
from votes.services import new_receipt, open_vote, options

ADMIN_URL = os.environ.get(
    "VOIX_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "voix_bench_close"
BENCH_KEY = "bench-close-vote-secret-key-0123456789abcdef"
NO_LOGIN = "!"  # no password hash matches it: these accounts never sign in
UNGRADED = 0.05  # the share of marks a voter leaves out (counted as the lowest grade)
SEAL_CHUNK = 5000
TARGET_SECONDS = 10.0
GRADES = len(SCALES[SEVEN])
TOP_FUNCTIONS = 25


# Setup: ballots sealed in the worker pool (a top-level function: workers use spawn).


def seal_chunk(
    vote_id: int, seed: int, count: int, option_ids: list[int]
) -> tuple[list[str], Counter[Any]]:
    """`count` sealed ballots and how many marks each (option, grade) got."""
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    tokens: list[str] = []
    counted: Counter[Any] = Counter()
    last = len(option_ids) - 1 or 1
    for _ in range(count):
        marks = []
        for position, option in enumerate(option_ids):
            if rng.random() < UNGRADED:
                continue
            # Each option leans to its own grade, so the ranking has something to order.
            mode = position * (GRADES - 1) / last
            marks.append((option, min(GRADES - 1, int(rng.triangular(0, GRADES, mode)))))
        counted.update(marks)
        tokens.append(sealing.seal(vote_id, new_receipt(), marks))
    return tokens, counted


async def create_postgres_database() -> str:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{DATABASE}"))


async def build(ballots: int, option_count: int) -> tuple[Principal, dict[str, Any], int, Counter]:
    """The table, its members, the vote and its sealed ballots; returns what closing needs."""
    now = datetime.now(UTC)
    organisation = await Organisation.insert(Organisation(slug="bench", name="Bench")).returning(
        Organisation.id
    )
    created = await Table.insert(
        Table(
            slug="bench-close",
            name="Bench close",
            postcode="13014",
            organisation=organisation[0]["id"],
        )
    ).returning(Table.id)
    table = await get_table_by_id(created[0]["id"])
    facilitator = await User.insert(
        User(login="bench-facilitator", display_name="Facilitator", password_hash=NO_LOGIN)
    ).returning(User.id)
    manager_id = facilitator[0]["id"]
    await Membership.insert(Membership(user=manager_id, table=table["id"], role=FACILITATOR))
    manager = Principal(
        user_id=manager_id,
        display_name="Facilitator",
        table_roles={table["id"]: FACILITATOR},
        verified=True,
    )

    start = time.perf_counter()
    async with db.write_transaction():
        for first in range(0, ballots, 10_000):
            await db.bulk_insert(
                "account",
                ("login", "display_name", "password_hash", "language", "is_admin", "created_at"),
                (
                    (f"bench-{n}", f"Habitant {n}", NO_LOGIN, "fr", False, now)
                    for n in range(first, min(first + 10_000, ballots))
                ),
            )
        await Vote.raw(
            'INSERT INTO membership ("user", "table", role, created_at) '
            "SELECT id, {}, 'resident', {} FROM account WHERE login LIKE 'bench-%' "
            "AND login <> 'bench-facilitator'",
            table["id"],
            now,
        )
    print(f"  {ballots} members written: {time.perf_counter() - start:.1f} s")

    proposals = await Proposal.insert(
        *[
            Proposal(
                table=table["id"],
                title=f"Proposition {n + 1}",
                body="Texte de la proposition.",
                theme="housing",
                language="fr",
                status=DISCUSSION,
            )
            for n in range(option_count)
        ]
    ).returning(Proposal.id)
    vote_id = await open_vote(
        manager,
        table,
        [row["id"] for row in proposals],
        {"question": "Quelles propositions retenir ?", "method": MAJORITY_JUDGMENT},
    )
    option_ids = [option["id"] for option in (await options([vote_id]))[vote_id]]

    start = time.perf_counter()
    counted: Counter[Any] = Counter()
    chunks = [
        (seed, min(SEAL_CHUNK, ballots - first))
        for seed, first in enumerate(range(0, ballots, SEAL_CHUNK))
    ]
    async with db.write_transaction():
        for batch in range(0, len(chunks), workers.size()):
            sealed = await asyncio.gather(
                *[
                    workers.run(seal_chunk, vote_id, seed, count, option_ids)
                    for seed, count in chunks[batch : batch + workers.size()]
                ]
            )
            for tokens, marks in sealed:
                counted.update(marks)
                await db.bulk_insert(
                    "sealed_ballot",
                    ("id", "vote", "sealed"),
                    ((uuid.uuid4(), vote_id, t) for t in tokens),
                )
        await Vote.raw(
            'INSERT INTO vote_participation (vote, "user", person, cast_at) '
            'SELECT {}, "user", \'user:\' || "user", {} FROM membership '
            "WHERE \"table\" = {} AND role = 'resident'",
            vote_id,
            now,
            table["id"],
        )
    print(
        f"  {ballots} ballots sealed and written with their participations: "
        f"{time.perf_counter() - start:.1f} s"
    )
    return manager, table, vote_id, counted


# Measuring: phases (wrapped functions), memory (a polling thread), a profile.


class Phases:
    """Wall time spent in functions the code under test looks up by name at call time."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._restore: list[tuple[Any, str, Any]] = []

    def _add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1

    def wrap(self, module: Any, name: str, label: str | Callable[..., str]) -> None:
        """`label` may be a function of the call's arguments (one line per table, say)."""
        original = getattr(module, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                named = label(*args, **kwargs) if callable(label) else label
                self._add(named, time.perf_counter() - start)

        self._restore.append((module, name, original))
        setattr(module, name, timed)

    def wrap_stream(self, module: Any, name: str, label: str) -> None:
        """An async generator: the time spent waiting for its rows (the fetches)."""
        original = getattr(module, name)

        async def timed(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            rows = original(*args, **kwargs)
            waited, fetches = 0.0, 0
            try:
                while True:
                    start = time.perf_counter()
                    try:
                        row = await anext(rows)
                    except StopAsyncIteration:
                        break
                    finally:
                        took = time.perf_counter() - start
                        waited += took
                        fetches += took > 0.0005  # a round trip, not a prefetched row
                    yield row
            finally:
                await rows.aclose()
                self.seconds[label] += waited
                self.calls[label] += fetches

        self._restore.append((module, name, original))
        setattr(module, name, timed)

    def restore(self) -> None:
        for module, name, original in reversed(self._restore):
            setattr(module, name, original)
        self._restore.clear()

    def line(self, label: str, indent: int = 2, total: float | None = None) -> str:
        share = f" ({self.seconds[label] / total:4.0%})" if total else ""
        return (
            f"{' ' * indent}{label:<44} {self.seconds[label]:7.2f} s{share}"
            f"  {self.calls[label]:>5} calls"
        )


def _rss_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _worker_pids() -> list[int]:
    pool = workers._pool  # the bench looks at the pool's processes
    return list(getattr(pool, "_processes", None) or {})


class PeakRss:
    """Polls VmRSS of this process and of the worker processes every 50 ms in a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.before = _rss_kib()
        self.peak = self.before
        self.workers_before = sum(_rss_kib(pid) for pid in _worker_pids())
        self.workers_peak = self.workers_before
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rss", daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_kib())
            self.workers_peak = max(self.workers_peak, sum(_rss_kib(pid) for pid in _worker_pids()))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_kib())


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)
        print(f"\nprofile of closing (this process only; workers not seen) → {path}")
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(TOP_FUNCTIONS)


# The run.


async def timed_close(manager: Principal, table: dict[str, Any], vote_id: int) -> float:
    phases = Phases()
    phases.wrap(closing, "unseal", "unseal")
    phases.wrap_stream(db, "stream", "stream sealed ballots (ORDER BY random())")
    phases.wrap(closing, "_store", "_store: COPY / executemany of a chunk")
    phases.wrap(closing, "_count", "_count (participants, tally, rank, store)")
    phases.wrap(closing, "tally", "tally (SQL, marks unnested and grouped)")
    phases.wrap(closing, "_apply", "_apply (decisions)")
    start = time.perf_counter()
    try:
        await closing.close_vote(manager, table, vote_id)
    finally:
        took = time.perf_counter() - start
        phases.restore()
    s = phases.seconds
    # Chunks are opened in the workers while earlier ones are written: the rest of unseal is
    # mostly waiting for the workers.
    unseal_rest = (
        s["unseal"]
        - s["_store: COPY / executemany of a chunk"]
        - s["stream sealed ballots (ORDER BY random())"]
    )
    accounted = (
        s["unseal"] + s["_count (participants, tally, rank, store)"] + s["_apply (decisions)"]
    )
    print(f"close_vote: {took:.2f} s")
    print(phases.line("unseal", total=took))
    print(phases.line("stream sealed ballots (ORDER BY random())", 4, took))
    print(phases.line("_store: COPY / executemany of a chunk", 4, took))
    print(f"    {'waiting for workers, DELETE seals (rest)':<44} {unseal_rest:7.2f} s")
    print(phases.line("_count (participants, tally, rank, store)", total=took))
    print(phases.line("tally (SQL, marks unnested and grouped)", 4, took))
    print(phases.line("_apply (decisions)", total=took))
    print(f"  {'UPDATE vote, options, audit, commit (rest)':<44} {took - accounted:7.2f} s")
    return took


async def timed_fingerprint(vote_id: int) -> float:
    phases = Phases()
    phases.wrap(box, "_ballot_page", "ballot pages")
    phases.wrap(box, "_receipt_page", "receipt pages")
    start = time.perf_counter()
    try:
        digest = await box.fingerprint(vote_id)
    finally:
        took = time.perf_counter() - start
        phases.restore()
    rest = took - phases.seconds["ballot pages"]
    rest -= phases.seconds["receipt pages"]
    print(f"fingerprint: {took:.2f} s  sha256 {digest[:16]}…")
    print(phases.line("ballot pages", total=took))
    print(phases.line("receipt pages", total=took))
    print(f"  {'encoding and hashing, in the thread (rest)':<44} {rest:7.2f} s")
    assert len(digest) == 64, digest
    return took


async def check(vote_id: int, ballots: int, counted: Counter) -> None:
    found = await Ballot.count().where(Ballot.vote == vote_id)
    marks = sum(
        sum(grade is not None for grade in json.loads(row["marks"]))
        for row in await Ballot.select(Ballot.marks).where(Ballot.vote == vote_id)
    )
    left = await SealedBallot.count().where(SealedBallot.vote == vote_id)
    sealed_marks = sum(counted.values())
    assert found == ballots, f"{found} ballots stored, {ballots} sealed"
    assert marks == sealed_marks, f"{marks} marks stored, {sealed_marks} sealed"
    assert left == 0, f"{left} sealed ballots left"
    vote = await Vote.select(Vote.participants, Vote.status).where(Vote.id == vote_id).first()
    assert vote["participants"] == ballots, vote
    for option in (await options([vote_id]))[vote_id]:
        expected = [counted[(option["id"], grade)] for grade in range(GRADES)]
        expected[-1] += ballots - sum(expected)  # ungraded: the lowest grade
        assert option["tally"] == expected, (option["id"], option["tally"], expected)
        assert sum(option["tally"]) == ballots
    ranks = sorted((o["rank"], o["key"]) for o in (await options([vote_id]))[vote_id])
    print(
        f"check: {found} ballots, {marks} marks (= sealed), no seal left, every option's "
        f"tally sums to {ballots} and matches the sealed marks; ranking {ranks[:3]}…"
    )


async def main(args: argparse.Namespace) -> None:
    await db.migrate()
    await db.engine().start()
    try:
        start = time.perf_counter()
        print(f"setup ({args.ballots} ballots × {args.options} options, {kind(args)}):")
        manager, table, vote_id, counted = await build(args.ballots, args.options)
        print(f"setup: {time.perf_counter() - start:.1f} s")
        print(f"worker processes: {workers.size()} (voix.workers.size(), pool started)")

        gc.collect()
        maxrss_before = _maxrss_mib()
        with PeakRss() as rss, profiled(args.profile):
            close_took = await timed_close(manager, table, vote_id)
        print(
            f"memory while closing: this process VmRSS {rss.before / 1024:.0f} → peak "
            f"{rss.peak / 1024:.0f} MiB (+{(rss.peak - rss.before) / 1024:.0f} MiB, polled every "
            f"50 ms, {rss.samples} samples); ru_maxrss {maxrss_before:.0f} → "
            f"{_maxrss_mib():.0f} MiB (lifetime high-water mark, setup included); workers "
            f"VmRSS total {rss.workers_before / 1024:.0f} → peak "
            f"{rss.workers_peak / 1024:.0f} MiB"
        )
        verdict = "met" if close_took < TARGET_SECONDS else "MISSED"
        print(f"target: closing and tallying < {TARGET_SECONDS:.0f} s: {verdict}")

        fingerprint_took = await timed_fingerprint(vote_id)

        times = []
        for _ in range(3):
            start = time.perf_counter()
            await closing.tally(vote_id, (await options([vote_id]))[vote_id])
            times.append(time.perf_counter() - start)
        print(
            f"tally alone (SQL GROUP BY, after closing): median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, 3 runs)"
        )
        await check(vote_id, args.ballots, counted)
        print(
            f"summary [{kind(args)}]: close {close_took:.2f} s, fingerprint "
            f"{fingerprint_took:.2f} s, {workers.size()} workers"
        )
    finally:
        await db.engine().stop()
        workers.shutdown()


def kind(args: argparse.Namespace) -> str:
    return "SQLite" if args.sqlite else "PostgreSQL"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--options", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file")
    parser.add_argument("--profile", metavar="FILE", help="cProfile closing into FILE")
    return parser.parse_args()


def run(args: argparse.Namespace, setup: Callable[[], str]) -> None:
    # Before anything reads the settings; the worker processes inherit the environment.
    os.environ["VOIX_SECRET_KEY"] = os.environ.get("VOIX_BENCH_SECRET_KEY", BENCH_KEY)
    os.environ["PICCOLO_CONF"] = "voix.piccolo_conf"
    os.environ["DATABASE_URL"] = setup()
    from voix.settings import get_settings  # noqa: PLC0415 - read after the environment is set

    get_settings.cache_clear()
    asyncio.run(main(args))


if __name__ == "__main__":
    arguments = parse()
    if arguments.sqlite:
        directory = tempfile.mkdtemp(prefix="voix-bench-close-")
        try:
            run(arguments, lambda: f"sqlite:///{directory}/bench.sqlite3")
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    else:
        run(arguments, lambda: asyncio.run(create_postgres_database()))
