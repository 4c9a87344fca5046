"""Search and the list's queries at 100,000 proposals, timed in the database (issue 15).

    .venv/bin/python bench/search.py [N] [sqlite|postgres]

Seeds one table (the demo's Flamants-Iris) with N proposals (default 100,000; varied words,
themes, statuses, a few hidden or merged, a third placed) on SQLite (var/bench/search.sqlite3)
and on PostgreSQL (database `voix_bench_search` on BENCH_POSTGRES_URL, default the local
server), kept between runs while it holds N; runs voix.db.analyze() as `voix migrate` does;
then prints, for each query, the median of 20 runs and the plan's scans. PostgreSQL: the
execution time EXPLAIN (ANALYZE) reports, planned for the values (c) and generic (g: what a
prepared statement of asyncpg's cache may get after five runs); SQLite: the query run in this
process. The queries are the list page's (its 20 rows, and its count), built by
proposals.services with proposals.search swapped in (BENCH_SEARCH_AS_TODAY=1: without), and
the two map queries (placed, placed_filtered).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from maps.svg import MAX_POINTS
from proposals import search, services
from proposals.models import Proposal
from tables.models import Table
from voix import db
from voix.db import Postgres, SQLite, engine
from voix.demo import seed as seed_demo

ROUNDS = 20
# BENCH_SEARCH_AS_TODAY=1: the queries of proposals/services.py as it is, without the swaps.
AS_TODAY = os.environ.get("BENCH_SEARCH_AS_TODAY") == "1"
TARGET_MS = 20.0
ROOT = Path(__file__).resolve().parent.parent
SQLITE_PATH = ROOT / "var" / "bench" / "search.sqlite3"
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "voix_bench_search"

NOUNS = (
    "ascenseurs", "bancs", "poubelles", "lampadaires", "trottoirs", "jeux d'enfants",
    "arbres", "escaliers", "boîtes aux lettres", "portes du hall", "caves", "parkings",
    "bus du soir", "passages piétons", "toilettes publiques", "fontaines", "paniers de basket",
    "vélos", "containers", "murs", "fenêtres", "digicodes", "jardins partagés", "abribus",
)  # fmt: skip
VERBS = (
    "Réparer", "Installer", "Nettoyer", "Remplacer", "Ajouter", "Éclairer", "Sécuriser",
    "Repeindre", "Entretenir", "Ouvrir", "Déplacer", "Protéger",
)  # fmt: skip
PLACES = (
    "de la tour G", "du bâtiment B", "devant l'école", "près du centre social", "au rond-point",
    "du square", "de la cité", "le long du boulevard", "à l'arrêt du 38", "derrière le stade",
    "de la résidence", "du marché",
)  # fmt: skip
SENTENCES = (
    "Les {n} sont en panne depuis des semaines.",
    "Les familles attendent une réponse du bailleur.",
    "Il faudrait que la Métropole s'en occupe rapidement.",
    "Les enfants jouent à côté et c'est dangereux.",
    "Les personnes âgées ne peuvent plus sortir le soir.",
    "Nous avons déjà écrit au conseil citoyen.",
    "Une pétition circule dans le quartier.",
    "Le problème revient chaque hiver.",
    "Les {n} {p} manquent vraiment.",
    "C'est une question de dignité pour les habitants.",
)  # fmt: skip
THEME_SLUGS = ("housing", "public_space", "cleanliness", "transport", "school")
STATUSES = ("submitted", "discussion", "voting", "adopted", "rejected", "transmitted", "done")
RARE_WORD = "pigeonnier"  # in one proposal of 20,000

COLUMNS = (
    "table", "title", "body", "theme", "language", "status", "created_at", "supports",
    "hidden_at", "hidden_reason", "transcription", "latitude", "longitude",
)  # fmt: skip


def proposals(table_id: int, count: int) -> list[tuple[Any, ...]]:
    rng = random.Random(15)  # noqa: S311 — the same made-up proposals at each run
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        noun = rng.choice(NOUNS)
        title = f"{rng.choice(VERBS)} les {noun} {rng.choice(PLACES)}"
        sentences = [
            rng.choice(SENTENCES).format(n=rng.choice(NOUNS), p=rng.choice(PLACES))
            for _ in range(rng.randint(3, 7))
        ]
        # Names of streets, buildings, people: the long tail of words real proposals have.
        sentences.append(f"Voir {_tail(rng)}, {_tail(rng)} et {_tail(rng)}.")
        if n % 20_000 == 7:
            sentences.append(f"Un {RARE_WORD} attire les pigeons sur le toit.")
        roll = rng.random()
        status = "merged" if roll < 0.03 else rng.choice(STATUSES)
        hidden = start - timedelta(days=1) if 0.03 <= roll < 0.05 else None
        placed = rng.random() < 0.33
        rows.append(
            (
                table_id,
                title[:140],
                " ".join(sentences),
                rng.choice(THEME_SLUGS),
                "fr",
                status,
                start - timedelta(minutes=n),
                rng.randint(0, 60),
                hidden,
                "Hors sujet" if hidden else "",
                "",
                43.3369 + rng.uniform(-0.004, 0.004) if placed else None,
                5.4105 + rng.uniform(-0.004, 0.004) if placed else None,
            )
        )
    return rows


def _tail(rng: random.Random) -> str:
    """One of 20,000 made-up words, the k-th about 1/k as often as the first (as words are):
    PostgreSQL's statistics then know the frequent ones and guess a few rows for the others."""
    return _word(int(20_000 ** rng.random()))


def _word(rank: int) -> str:
    first, rest = divmod(rank, len(SYLLABLES) ** 2)
    second, third = divmod(rest, len(SYLLABLES))
    return SYLLABLES[first] + SYLLABLES[second] + SYLLABLES[third]


SYLLABLES = ("ba", "ko", "mi", "tur", "sel", "van", "dor", "pi", "lu", "ra", "zo", "ne", "ka",
             "ri", "tel", "mon", "sa", "gu", "fé", "lo", "bar", "nik", "sop", "ul", "vir",
             "dam", "po", "che")  # fmt: skip


def cases() -> list[tuple[str, dict[str, str]]]:
    return [
        ("list, newest", {}),
        ("list, most supported", {"sort": "supports"}),
        ("list, one theme", {"theme": "housing"}),
        ("word 'ascenseur'", {"q": "ascenseur"}),
        ("word 'ascenseur' + theme", {"q": "ascenseur", "theme": "housing"}),
        ("part 'censeu'", {"q": "censeu"}),
        ("part 'censeu' + theme", {"q": "censeu", "theme": "housing"}),
        (f"middling '{_word(60)}'", {"q": _word(60)}),
        (f"rare '{RARE_WORD}'", {"q": RARE_WORD}),
        (f"rare '{RARE_WORD}' + theme", {"q": RARE_WORD, "theme": "housing"}),
        ("2 letters '38'", {"q": "38"}),
        ("2 letters '38' + theme", {"q": "38", "theme": "housing"}),
        ("2 letters 'ch'", {"q": "ch"}),
    ]


async def seed(count: int) -> int:
    await db.migrate()
    fresh = await seed_demo()
    table = await Table.select(Table.id).where(Table.slug == "flamants-iris").first()
    assert table is not None, "the demo's tables are seeded"
    if fresh:
        started = time.perf_counter()
        async with db.engine().transaction():
            if isinstance(engine(), SQLite):
                # FTS5's trigger rereads its index's pages: SQLite's 2 MB cache thrashes.
                await engine().run_ddl("PRAGMA cache_size = -262144")
            rows = proposals(table["id"], count)
            for chunk in range(0, len(rows), 10_000):
                await db.bulk_insert("proposal", COLUMNS, rows[chunk : chunk + 10_000])
        print(f"  seeded {count:,} proposals in {time.perf_counter() - started:.1f} s")
    have = await Proposal.count().where(Proposal.table == table["id"])
    print(f"  the table holds {have:,} proposals (with the demo's)")
    started = time.perf_counter()
    await db.analyze()
    print(f"  analyze: {(time.perf_counter() - started) * 1000:.0f} ms")
    return int(table["id"])


def queries(table_id: int) -> list[tuple[str, str, list[tuple[str, list[Any]]]]]:
    """(label, kind, [(sql, args)]) for every case: the page's rows and its count; the maps."""
    if not AS_TODAY:  # the swaps the lead makes in proposals/services.py
        services._search = search.condition
        services._filter = _filter
    kind = "postgres" if isinstance(engine(), Postgres) else "sqlite"
    built = []
    for label, params in cases():
        filters = services.Filters.from_query(params)
        condition = services._listed(table_id, filters)
        rows = services._ordered(
            Proposal.select(*services._COLUMNS).where(condition), filters
        ).limit(services.PAGE_SIZE)
        count = Proposal.count().where(condition)
        built.append((label, "page", [q.compile_string(kind) for q in rows.querystrings]))
        built.append((label, "count", [q.compile_string(kind) for q in count.querystrings]))
    placed = services.Filters()
    for label, query in (
        ("map: placed()", _placed_query(services, table_id)),
        ("map: placed_filtered()", _placed_filtered_query(services, table_id, placed)),
    ):
        built.append((label, "rows", [q.compile_string(kind) for q in query.querystrings]))
    return built


def _filter(table_id: int, theme: str | None) -> Any:
    """proposals.services._filter with proposals.search.listed() for its last two terms."""
    condition = (Proposal.table == table_id) & search.listed()
    return condition & (Proposal.theme == theme) if theme else condition


def _placed_query(services: Any, table_id: int) -> Any:
    return (
        Proposal.select(Proposal.id, Proposal.title, Proposal.latitude, Proposal.longitude)
        .where(services._filter(table_id, None) & Proposal.latitude.is_not_null())
        .order_by(Proposal.created_at, ascending=False)
        .limit(MAX_POINTS)
    )


def _placed_filtered_query(services: Any, table_id: int, filters: Any) -> Any:
    listed = (
        Proposal.hidden_at.is_null() & (Proposal.status != "merged")
        if AS_TODAY
        else search.listed()
    )
    condition = Proposal.table.is_in([table_id]) & listed & Proposal.latitude.is_not_null()
    return Proposal.select(
        Proposal.id, Proposal.title, Proposal.theme, Proposal.latitude, Proposal.longitude
    ).where(condition)


def _plan_nodes(node: dict[str, Any]) -> list[str]:
    name = node["Node Type"]
    if "Index Name" in node:
        name += f" {node['Index Name']}"
    elif "Relation Name" in node:
        name += f" {node['Relation Name']}"
    found = [name]
    for child in node.get("Plans", []):
        found += _plan_nodes(child)
    return found


def _plan_kind(nodes: list[str]) -> str:
    scans = [n for n in nodes if "Scan" in n or n == "BitmapOr"]
    return ", ".join(dict.fromkeys(scans)) or ", ".join(nodes[:3])


async def time_postgres(built: list[Any], url: str) -> None:
    """Each query twice: planned for its values (c: what EXPLAIN with parameters does), and
    with a generic plan (g: what a statement asyncpg prepares and caches may get after five
    runs), through PREPARE and EXPLAIN EXECUTE under plan_cache_mode = force_generic_plan."""
    connection = await asyncpg.connect(url)
    try:
        for label, kind, [(sql, args)] in built:
            values = ", ".join(_literal(arg) for arg in args)
            await connection.execute("SET plan_cache_mode = force_generic_plan")
            await connection.execute(f"PREPARE bench_query AS {sql}")
            for mode, statement, bound in (
                ("c", f"{EXPLAIN} {sql}", args),
                ("g", f"{EXPLAIN} EXECUTE bench_query({values})", []),
            ):
                times, plan = [], ""
                for _ in range(ROUNDS):
                    explained = json.loads(await connection.fetchval(statement, *bound))[0]
                    times.append(explained["Execution Time"])
                    plan = _plan_kind(_plan_nodes(explained["Plan"]))
                report(label, f"{kind}/{mode}", statistics.median(times), plan)
            await connection.execute("DEALLOCATE bench_query")
    finally:
        await connection.close()


EXPLAIN = "EXPLAIN (ANALYZE, FORMAT JSON)"


def _literal(value: Any) -> str:
    """A value of ours (numbers, the bench's words) as an SQL literal, for EXECUTE."""
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def time_sqlite(built: list[Any], path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        for label, kind, [(sql, args)] in built:
            times = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                connection.execute(sql, args).fetchall()
                times.append((time.perf_counter() - start) * 1000)
            plan = "; ".join(  # the joins to authors and districts left out
                row[3]
                for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", args)
                if "$" not in row[3]
            )
            report(label, kind, statistics.median(times), plan)
    finally:
        connection.close()


def report(label: str, kind: str, ms: float, plan: str) -> None:
    flag = "" if ms < TARGET_MS else "  > target"
    print(f"  {label:<32} {kind:<8} {ms:8.2f} ms{flag:<11} {plan}")


async def child(count: int, kind: str) -> None:
    print(
        f"{kind}: {count:,} proposals in one table, median of {ROUNDS} (target < {TARGET_MS} ms)"
        + (", proposals/services.py as it is" if AS_TODAY else ", with proposals.search")
    )
    table_id = await seed(count)
    built = queries(table_id)
    if kind == "postgres":
        await time_postgres(built, os.environ["DATABASE_URL"])
    else:
        time_sqlite(built, SQLITE_PATH)


async def _create_postgres_database(fresh: bool) -> str:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        if fresh:
            await connection.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB):
            await connection.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{BENCH_DB}"))


def main() -> None:
    args = sys.argv[1:]
    count = int(args[0]) if args and args[0].isdigit() else 100_000
    if os.environ.get("BENCH_SEARCH_CHILD"):
        asyncio.run(child(count, os.environ["BENCH_SEARCH_CHILD"]))
        return
    kinds = [a for a in args if a in ("sqlite", "postgres")] or ["sqlite", "postgres"]
    for kind in kinds:
        # Seeded once for N: another N starts from an empty database.
        seeded = SQLITE_PATH.parent / f"search.{kind}.seeded"
        fresh = not seeded.exists() or seeded.read_text() != str(count)
        if kind == "sqlite":
            SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
            if fresh:
                for path in SQLITE_PATH.parent.glob(SQLITE_PATH.name + "*"):
                    path.unlink()
            url = f"sqlite:///{SQLITE_PATH}"
        else:
            url = asyncio.run(_create_postgres_database(fresh))
        seeded.unlink(missing_ok=True)
        env = {**os.environ, "DATABASE_URL": url, "BENCH_SEARCH_CHILD": kind}
        # A process per engine: Piccolo reads its engine from DATABASE_URL once.
        subprocess.run(  # noqa: S603 — this very script
            [sys.executable, __file__, str(count)], env=env, check=True, cwd=ROOT
        )
        seeded.write_text(str(count))


if __name__ == "__main__":
    main()
