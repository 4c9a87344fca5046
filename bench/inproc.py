"""The benchmark's steps that run inside the app's code, one database per process.

bench/run.py runs each step as `.venv/bin/python bench/inproc.py STEP …` with the database's
environment (DATABASE_URL, VOIX_ENV=production, …), so that settings and the engine are read
once, as in a server. Each step writes its results as JSON to the file given with --out.

- `seed --rows N`: migrate, seed the demo, bring the Flamants table to N proposals (bulk
  inserts: COPY on PostgreSQL) with varied themes, statuses, supports, words (French and
  Arabic), dates spread over three years, one in five placed on the map near the table's
  centre social, inside its district (at most 10,000: the issue's map); a dozen comments on one demo proposal; then ANALYZE.
- `queries --targets FILE`: each target's query count through the ASGI app (httpx), anonymous
  and signed in (a demo resident), on the first request and on the next (warm).
- `search --reps R`: the SQL `proposals.services.page_for_table` sends for a search (captured
  as it runs, so whatever the search code builds is what is timed): on PostgreSQL its
  EXPLAIN ANALYZE execution time, on SQLite the query's time in this process; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DEMO_PASSWORD, DEMO_RESIDENT, TABLE_SLUG  # bench/run.py

from maps.services import district_at, table_districts
from proposals import services as proposals
from proposals.models import Comment, Proposal
from proposals.themes import THEMES
from tables.models import Table
from voix import db
from voix.app import create_app
from voix.demo import seed as seed_demo

PLACED_MAX = 10_000  # the map: 10,000 placed proposals
PLACED_EVERY = 5  # one in five is placed: 2,000 at 10k rows, 10,000 from 50k rows
CHUNK = 5_000
# Words the search measures find in titles and texts, and parts of words.
WORDS_FR = ("ascenseur", "banc", "bus", "école", "propreté", "jardin", "lumière", "parking")
WORDS_AR = ("مصعد", "حديقة", "حافلة", "مدرسة", "إنارة")
SEARCHES = ("ascenseur", "jardin", "lumière", "école", "censeu", "ardin", "umièr", "حديقة")


async def seed(rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    await db.migrate()
    await seed_demo()
    demo_seconds = time.perf_counter() - started
    await db.engine().start()
    table = await Table.select(Table.id).where(Table.slug == TABLE_SLUG).first()
    table_id = table["id"]
    have = await Proposal.count().where(Proposal.table == table_id)
    authors = sorted(
        {
            row["author"]
            for row in await Proposal.select(Proposal.author).where(Proposal.table == table_id)
            if row["author"] is not None
        }
    )
    districts = await table_districts(table_id)
    placed = await Proposal.select(Proposal.latitude, Proposal.longitude).where(
        (Proposal.table == table_id) & Proposal.latitude.is_not_null()
    )
    centre = (
        statistics.fmean(p["latitude"] for p in placed),
        statistics.fmean(p["longitude"] for p in placed),
    )
    district = district_at(districts, *centre)
    rng = random.Random(15)  # noqa: S311 — spreading rows, not secrets
    now = datetime.now(UTC)
    statuses = list(proposals.LISTED_STATUSES)
    themes = list(THEMES)
    columns = (
        "table", "title", "body", "theme", "language", "status", "author", "created_at",
        "supports", "latitude", "longitude", "district",
    )  # fmt: skip

    def row(n: int) -> tuple[Any, ...]:
        arabic = n % 10 == 3
        words = WORDS_AR if arabic else WORDS_FR
        first, second, third = (
            words[n % len(words)],
            words[(n * 7) % len(words)],
            words[(n * 3) % len(words)],
        )
        if arabic:
            title = f"اقتراح {n}: {first} و{second}"
            body = f"نص الاقتراح {n}، {third}. " * 6
        else:
            title = f"Proposition {n} : {first} et {second}"
            body = f"Texte de la proposition {n}, {third}, pour le quartier. " * 6
        is_placed = n % PLACED_EVERY == 0 and (n - have) // PLACED_EVERY < PLACED_MAX
        return (
            table_id,
            title[:140],
            body,
            themes[n % len(themes)],
            "ar" if arabic else "fr",
            statuses[(n * 5) % len(statuses)],
            authors[n % len(authors)] if authors and n % 4 else None,
            # Spread over three years, newest last (as they come).
            now - timedelta(minutes=(rows - n) * (3 * 365 * 24 * 60) / max(rows, 1)),
            n % 37 if n % 50 else 40 + n % 200,
            centre[0] + rng.uniform(-0.002, 0.002) if is_placed else None,
            centre[1] + rng.uniform(-0.002, 0.002) if is_placed else None,
            district if is_placed else None,
        )

    # A proposal page with a discussion: a dozen comments and replies on a demo proposal
    # (the demo's most supported, chosen before the bulk rows come).
    commented = (
        await Proposal.select(Proposal.id)
        .where((Proposal.table == table_id) & Proposal.author.is_not_null())
        .order_by(Proposal.supports, ascending=False)
        .order_by(Proposal.id)
        .first()
    )
    started = time.perf_counter()
    for start in range(have, rows, CHUNK):
        async with db.engine().transaction():
            await db.bulk_insert(
                "proposal", columns, [row(n) for n in range(start, min(start + CHUNK, rows))]
            )
    insert_seconds = time.perf_counter() - started

    if authors:
        await _discussion(commented["id"], authors, now)

    started = time.perf_counter()
    analyze = getattr(db, "analyze", None)
    if analyze is not None:
        await analyze()
    else:
        await db.engine().run_ddl("ANALYZE")
    analyze_seconds = time.perf_counter() - started

    total = await Proposal.count().where(Proposal.table == table_id)
    placed_count = await Proposal.count().where(
        (Proposal.table == table_id) & Proposal.latitude.is_not_null()
    )
    await db.engine().stop()
    return {
        "rows": total,
        "placed": placed_count,
        "commented_proposal": commented["id"],
        "points_paths": _points_paths(),
        "seconds": {
            "demo": round(demo_seconds, 2),
            "insert": round(insert_seconds, 2),
            "analyze": round(analyze_seconds, 2),
        },
    }


async def _discussion(proposal_id: int, authors: list[int], now: datetime) -> None:
    """A dozen comments, every third a reply to the one before, unless already there."""
    if await Comment.exists().where(Comment.proposal == proposal_id):
        return
    last = None
    for n in range(12):
        rows = await Comment.insert(
            Comment(
                proposal=proposal_id,
                parent=last if n % 3 == 2 else None,
                author=authors[n % len(authors)],
                body=f"Commentaire {n} : d'accord, il faut aussi penser au {WORDS_FR[n % 8]}.",
                created_at=now - timedelta(hours=12 - n),
            )
        ).returning(Comment.id)
        last = rows[0]["id"]


def _points_paths() -> list[str]:
    """Where the map's points are served (a route of the table with "point" in its path)."""
    paths = sorted({route.path for route in create_app().routes})
    return [
        p.replace("{slug:str}", TABLE_SLUG)
        for p in paths
        if "point" in p and p.startswith("/tables/{slug:str}") and p.count("{") == 1
    ]


async def sign_in(client: Any) -> None:
    """Signs in as a demo resident through the login form (CSRF token and all)."""
    form = await client.get("/login")
    found = re.search(r'name="(_csrf_token)"[^>]*value="([^"]+)"', form.text)
    if not found:
        raise RuntimeError("no CSRF field on /login")
    done = await client.post(
        "/login",
        data={
            "login": DEMO_RESIDENT,
            "password": DEMO_PASSWORD,
            found[1]: found[2],
            "next": "/",
        },
    )
    if done.status_code not in (302, 303):
        raise RuntimeError(f"signing in answered {done.status_code}")


async def queries(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    await db.engine().start()
    app = create_app()
    results = []
    try:
        for who in ("anonymous", "signed_in"):
            transport = httpx.ASGITransport(app=app)
            # https: the session cookie is Secure in production.
            async with httpx.AsyncClient(
                transport=transport, base_url="https://127.0.0.1"
            ) as client:
                if who == "signed_in":
                    await sign_in(client)
                for target in targets:
                    counts = []
                    status = 0
                    for _ in range(2):
                        before = db.engine().queries_run
                        response = await client.get(target["path"], headers=target["headers"])
                        counts.append(db.engine().queries_run - before)
                        status = response.status_code
                    results.append(
                        {
                            "name": target["name"],
                            "who": who,
                            "status": status,
                            "first": counts[0],
                            "warm": counts[1],
                        }
                    )
    finally:
        await db.engine().stop()
    return results


def _capture(engine: Any) -> tuple[list[Any], Callable[[], None]]:
    """Records the statements the engine runs, until the returned function is called."""
    captured: list[Any] = []
    original = engine.run_querystring

    async def recording(querystring: Any, in_pool: bool = True) -> Any:
        captured.append(querystring)
        return await original(querystring, in_pool=in_pool)

    engine.run_querystring = recording
    return captured, lambda: delattr(engine, "run_querystring")


async def search(reps: int) -> list[dict[str, Any]]:
    engine = db.engine()
    await engine.start()
    table = await Table.select(Table.id).where(Table.slug == TABLE_SLUG).first()
    results = []
    postgres = isinstance(engine, db.Postgres)
    if postgres:
        connection: Any = await asyncpg.connect(engine.config["dsn"])
    else:
        connection = await aiosqlite.connect(engine.connection_kwargs["database"])
    try:
        for q in SEARCHES:
            captured, stop = _capture(engine)
            try:
                page = await proposals.page_for_table(table["id"], proposals.Filters(q=q))
            finally:
                stop()
            statements = [s.compile_string(engine_type=engine.engine_type) for s in captured]
            per_statement = []
            for sql, args in statements:
                times = []
                for _ in range(reps):
                    if postgres:
                        plan = await connection.fetchval(
                            f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args
                        )
                        times.append(json.loads(plan)[0]["Execution Time"])
                    else:
                        start = time.perf_counter()
                        cursor = await connection.execute(sql, args)
                        await cursor.fetchall()
                        await cursor.close()
                        times.append((time.perf_counter() - start) * 1000)
                per_statement.append(round(statistics.median(times), 3))
            results.append(
                {
                    "q": q,
                    "found": page.total,
                    "statements": len(statements),
                    "ms_each": per_statement,
                    "ms": round(sum(per_statement), 3),
                    "how": "EXPLAIN ANALYZE execution time"
                    if postgres
                    else "in-process query time (aiosqlite)",
                }
            )
    finally:
        await connection.close()
        await engine.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=("seed", "queries", "search"))
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--targets", type=Path)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "seed":
        result: Any = asyncio.run(seed(args.rows))
    elif args.step == "queries":
        result = asyncio.run(queries(json.loads(args.targets.read_text())))
    else:
        result = asyncio.run(search(args.reps))
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
