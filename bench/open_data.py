"""Issue 17's benchmark: open-data exports at 12,000 and 100,000 proposals, time and memory.

    .venv/bin/python -m bench.open_data --db sqlite|postgres [--rows 12000,100000] [--no-http]

For each size N, on a database of its own (SQLite: var/bench/open-data-N.sqlite3; PostgreSQL:
`voix_bench_open_data` on BENCH_POSTGRES_URL, default the local server, dropped and made anew):

1. migrate, seed the demo, bring the Flamants table to N proposals (bench/search.py's made-up
   proposals: varied words, a few hidden or merged, a third placed), one comment per ten of
   them, a translation per twenty, a status change per five; ANALYZE (a process of its own);
2. in process: `exports.open_data.stream("proposals", "csv", whole site)` read to the end;
   seconds, bytes, chunks, and the process's memory: its resident set before, and its peak
   while streaming (sampled at every chunk from /proc/self/status VmRSS, and VmHWM after the
   peak was reset through /proc/self/clear_refs where the kernel allows it);
3. through HTTP (unless --no-http or the route is missing): `voix` served by uvicorn (one
   worker, as in production), GET /data/proposals.csv read as it streams (no compression
   asked); seconds, bytes, and the server process's memory growth: its peak resident set
   while serving (sampled at every chunk the client receives, and VmHWM after a reset) less its
   resident set after a warm-up request of the same route at the demo's size.

Targets (issue 17): 12,000 proposals to CSV in under 10 s with the server's memory growth
under 100 MB; 100,000 streamed with flat memory (the peak reported; "flat": under 100 MB of
growth too, whatever N). Figures taken while other work runs on the machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import environment as served_environment  # bench/run.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "voix_bench_open_data"
PORT = 8831
TIME_MAX_S = 10.0  # 12,000 proposals to CSV
GROWTH_MAX_MB = 100.0
TIMED_ROWS = 12_000


# Memory, from /proc (Linux)


def memory(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def reset_peak(pid: int | str = "self") -> bool:
    """Resets VmHWM to the current resident set (Linux 4.0+: "5" to clear_refs); False when the
    kernel or permissions refuse (the sampled peak stands alone then)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# The child processes: one engine each, read from DATABASE_URL


async def seed(count: int) -> dict[str, Any]:
    from bench.search import COLUMNS, proposals  # noqa: PLC0415 — bench/search.py's rows
    from proposals.models import Proposal  # noqa: PLC0415
    from tables.models import Table  # noqa: PLC0415
    from voix import db  # noqa: PLC0415
    from voix.demo import seed as seed_demo  # noqa: PLC0415

    await db.migrate()
    await seed_demo()
    await db.engine().start()
    try:
        table = await Table.select(Table.id).where(Table.slug == "flamants-iris").first()
        assert table is not None, "the demo's tables are seeded"
        have = await Proposal.count()
        started = time.perf_counter()
        rows = proposals(table["id"], max(0, count - have))
        async with db.engine().transaction():
            for chunk in range(0, len(rows), 10_000):
                await db.bulk_insert("proposal", COLUMNS, rows[chunk : chunk + 10_000])
        del rows
        ids = [row["id"] for row in await Proposal.select(Proposal.id).order_by(Proposal.id)]
        rng = random.Random(17)  # noqa: S311 — the same made-up rows at each run
        now = datetime(2026, 11, 20, tzinfo=UTC)
        async with db.engine().transaction():
            await db.bulk_insert(
                "proposal_comment",
                ("proposal", "body", "created_at", "hidden_reason"),
                [(i, "Je suis d'accord, c'est urgent.", now, "") for i in ids[::10]],
            )
            await db.bulk_insert(
                "proposal_translation",
                ("proposal", "language", "title", "body", "updated_at"),
                [(i, "ar", "إصلاح المصاعد", "المصاعد معطلة منذ أسابيع.", now) for i in ids[::20]],
            )
            await db.bulk_insert(
                "proposal_status_change",
                ("proposal", "from_status", "to_status", "reason", "at"),
                [(i, "submitted", rng.choice(("discussion", "voting")), "", now) for i in ids[::5]],
            )
        await db.analyze()
        return {"proposals": await Proposal.count(), "seed_s": time.perf_counter() - started}
    finally:
        await db.engine().stop()


async def in_process() -> dict[str, Any]:
    from exports import open_data  # noqa: PLC0415
    from voix import db  # noqa: PLC0415

    await db.engine().start()
    try:
        # Warm: imports, the engine's connection, the first queries' plans.
        async for _ in open_data.stream("meetings", "csv", open_data.Scope()):
            pass
        before = memory()["VmRSS"]
        reset = reset_peak()
        peak = before
        size = chunks = 0
        started = time.perf_counter()
        async for chunk in open_data.stream("proposals", "csv", open_data.Scope()):
            size += len(chunk)
            chunks += 1
            peak = max(peak, memory()["VmRSS"])
        seconds = time.perf_counter() - started
        if reset:
            peak = max(peak, memory()["VmHWM"])
        return {
            "seconds": seconds,
            "bytes": size,
            "chunks": chunks,
            "rss_before_mb": before,
            "peak_mb": peak,
            "growth_mb": peak - before,
            "peak_reset": reset,
        }
    finally:
        await db.engine().stop()


def child(step: str, count: int) -> None:
    result = asyncio.run(seed(count) if step == "seed" else in_process())
    print("RESULT " + json.dumps(result), flush=True)


def run_child(step: str, count: int, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 — this very module
        [sys.executable, "-m", "bench.open_data", "--child", step, "--rows", str(count)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"bench/open_data.py: the {step} step failed ({done.returncode})")
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


# Through HTTP


def through_http(env: dict[str, str], path: str) -> dict[str, Any] | None:
    import httpx  # noqa: PLC0415

    from bench.load import Server  # noqa: PLC0415

    command = [
        sys.executable, "-m", "uvicorn", "voix.asgi:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(PORT), "--workers", "1",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = Server("open-data", command, env, OUT / "open-data-server.log", ROOT)
    try:
        server.wait_ready(f"http://127.0.0.1:{PORT}/health")
        pid = server.process.pid
        base = f"http://127.0.0.1:{PORT}"
        headers = {"Accept-Encoding": "identity"}
        with httpx.Client(base_url=base, timeout=600, headers=headers) as client:
            # Warm: the route, its templates and queries, at the demo's size.
            if client.get("/data/meetings.csv").status_code != 200:
                return None
            before = memory(pid)["VmRSS"]
            reset = reset_peak(pid)
            peak = before
            size = chunks = 0
            started = time.perf_counter()
            with client.stream("GET", path) as response:
                if response.status_code != 200:
                    return None
                kind = response.headers.get("content-type", "")
                for chunk in response.iter_raw():
                    size += len(chunk)
                    chunks += 1
                    peak = max(peak, memory(pid)["VmRSS"])
            seconds = time.perf_counter() - started
            if reset:
                peak = max(peak, memory(pid)["VmHWM"])
        return {
            "seconds": seconds,
            "bytes": size,
            "chunks": chunks,
            "content_type": kind,
            "rss_before_mb": before,
            "peak_mb": peak,
            "growth_mb": peak - before,
            "peak_reset": reset,
        }
    finally:
        server.stop()


# Databases


async def _postgres_database() -> str:
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415

    connection = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{PG_DATABASE}"))


def fresh_database(kind: str, count: int) -> str:
    if kind == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"open-data-{count}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    return asyncio.run(_postgres_database())


def environment(database_url: str) -> dict[str, str]:
    """As bench/run.py serves the app, on this benchmark's port."""
    return served_environment(database_url, port=PORT)


def verdict(count: int, figures: dict[str, Any]) -> str:
    failures = []
    if count <= TIMED_ROWS and figures["seconds"] >= TIME_MAX_S:
        failures.append(f"{figures['seconds']:.1f} s >= {TIME_MAX_S:.0f} s")
    if figures["growth_mb"] >= GROWTH_MAX_MB:
        failures.append(f"growth {figures['growth_mb']:.0f} MB >= {GROWTH_MAX_MB:.0f} MB")
    return "pass" if not failures else "FAIL (" + "; ".join(failures) + ")"


def line(label: str, count: int, figures: dict[str, Any]) -> str:
    return (
        f"  {label:<12} {figures['seconds']:7.2f} s  {figures['bytes'] / 2**20:8.1f} MB out  "
        f"{figures['chunks']:6d} chunks  RSS before {figures['rss_before_mb']:6.1f} MB  "
        f"peak {figures['peak_mb']:6.1f} MB  growth {figures['growth_mb']:6.1f} MB"
        f"{'' if figures['peak_reset'] else ' (sampled)'}  {verdict(count, figures)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", default=f"{TIMED_ROWS},100000")
    parser.add_argument("--no-http", action="store_true", help="in process only")
    parser.add_argument("--child", choices=["seed", "stream"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, int(args.rows))
        return 0
    failed = False
    for count in (int(n) for n in args.rows.split(",")):
        env = environment(fresh_database(args.db, count))
        seeded = run_child("seed", count, env)
        print(
            f"{args.db}: {seeded['proposals']:,} proposals "
            f"(seeded in {seeded['seed_s']:.1f} s); the whole site's proposals to CSV:",
            flush=True,
        )
        streamed = run_child("stream", count, env)
        print(line("in process", count, streamed), flush=True)
        failed |= not verdict(count, streamed).startswith("pass")
        if not args.no_http:
            served = through_http(env, "/data/proposals.csv")
            if served is None:
                print("  HTTP         /data/proposals.csv is not served: skipped", flush=True)
            else:
                print(line("HTTP server", count, served), flush=True)
                failed |= not verdict(count, served).startswith("pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
