"""Database engines chosen by DATABASE_URL, and the few operations every domain shares.

Engines are swapped by configuration: the two subclasses below carry the differences
(how a write transaction starts, how the database is prepared) so that no domain code
asks which engine it runs on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine import engine_finder
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.query.functions.aggregate import Count

logger = logging.getLogger("voix")


class _QueryCounting:
    """Counts statements sent, so tests and benchmarks can catch N+1 queries."""

    queries_run = 0

    async def run_querystring(self, querystring: Any, in_pool: bool = True) -> Any:
        self.queries_run += 1
        return await super().run_querystring(querystring, in_pool=in_pool)  # type: ignore[misc]


class SQLite(_QueryCounting, SQLiteEngine):
    def __init__(self, path: str) -> None:
        # A generous busy timeout: concurrent writers queue instead of failing.
        super().__init__(path=path, timeout=30)

    def write_transaction(self) -> Any:
        # IMMEDIATE takes the write lock up front, so two writers never deadlock
        # upgrading a read lock; they wait in turn within the busy timeout.
        return self.transaction(transaction_type=TransactionType.immediate)

    async def prepare(self) -> None:
        await self.run_ddl("PRAGMA journal_mode=WAL")

    async def start(self) -> None:
        """SQLite has no pool; each query opens the file."""

    async def stop(self) -> None:
        """Nothing to release."""


class Postgres(_QueryCounting, PostgresEngine):
    def __init__(self, dsn: str) -> None:
        super().__init__(config={"dsn": dsn})

    def write_transaction(self) -> Any:
        return self.transaction()

    async def prepare(self) -> None:
        """Nothing to prepare beyond migrations."""

    async def start(self) -> None:
        await self.start_connection_pool(min_size=1, max_size=10)

    async def stop(self) -> None:
        await self.close_connection_pool()


def engine_from_url(url: str) -> SQLite | Postgres:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy reads them.
        return SQLite(path=url.removeprefix("sqlite:///"))
    if scheme in ("postgres", "postgresql"):
        return Postgres(dsn=url)
    raise ValueError(f"Unsupported DATABASE_URL scheme: {scheme!r}")


def utc(value: datetime) -> datetime:
    """Timestamps come back aware from PostgreSQL, naive (but UTC) from SQLite."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def engine() -> SQLite | Postgres:
    found = engine_finder()
    if not isinstance(found, SQLite | Postgres):
        raise RuntimeError("PICCOLO_CONF must point at voix.piccolo_conf")
    return found


def write_transaction() -> Any:
    """A transaction for a read-check-write sequence that must not interleave."""
    return engine().write_transaction()


async def migrate() -> None:
    db = engine()
    await db.prepare()
    await run_forwards(app_name="all")
    # Data the schema's migrations mark and the application's code completes.
    from exports.services import freeze_legacy  # noqa: PLC0415 — exports imports this module

    await freeze_legacy()


async def ping(db: Engine | None = None) -> bool:
    try:
        await (db or engine()).run_ddl("SELECT 1")
    except Exception:
        return False
    return True


async def count_by(column: Any, ids: list[int]) -> dict[int, int]:
    """How many rows of `column`'s table point at each of these ids (0 for none), in one query."""
    counts = dict.fromkeys(ids, 0)
    if ids:
        model = column._meta.table
        rows = await (
            model.select(column, Count(model._meta.primary_key).as_alias("n"))
            .where(column.is_in(ids))
            .group_by(column)
        )
        counts.update({row[column._meta.name]: row["n"] for row in rows})
    return counts


def _connection() -> Any:
    """The driver's connection of the transaction in progress (aiosqlite or asyncpg)."""
    transaction = engine().current_transaction.get()
    if transaction is None:
        raise RuntimeError("streaming and bulk writes run inside a transaction")
    return transaction.connection


def _placeholders(sql: str) -> str:
    """Our SQL is written with `?`; PostgreSQL numbers its parameters."""
    if isinstance(engine(), SQLite):
        return sql
    numbers = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


async def stream(sql: str, *args: Any, chunk: int = 2000) -> AsyncIterator[tuple[Any, ...]]:
    """Rows of a query read in chunks from a cursor, never the whole result in memory.

    Runs inside the caller's transaction (a server-side cursor needs one on PostgreSQL), and
    the caller may write on the same connection between rows.
    """
    connection = _connection()
    if isinstance(engine(), SQLite):
        cursor = await connection.execute(sql, args)
        try:
            while rows := await cursor.fetchmany(chunk):
                for row in rows:
                    yield tuple(row.values()) if isinstance(row, dict) else tuple(row)
        finally:
            await cursor.close()
    else:
        async for record in connection.cursor(_placeholders(sql), *args, prefetch=chunk):
            yield tuple(record.values())


async def bulk_insert(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Many rows in one round trip: COPY on PostgreSQL, executemany on SQLite."""
    connection = _connection()
    if isinstance(engine(), SQLite):
        marks = ", ".join("?" for _ in columns)
        names = ", ".join(f'"{column}"' for column in columns)
        values = [
            [str(v) if not isinstance(v, int | str | float | None) else v for v in row]
            for row in rows
        ]
        # Table and column names come from our code, never from a request.
        insert = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'  # noqa: S608
        await connection.executemany(insert, values)
    else:
        await connection.copy_records_to_table(table, records=list(rows), columns=list(columns))


async def secure_delete() -> None:
    """Rows deleted next in this transaction are overwritten on SQLite, not only unlinked."""
    if isinstance(engine(), SQLite):
        await _connection().execute("PRAGMA secure_delete = ON")


async def scrub(table: str) -> None:
    """After deleting rows whose remains must not be read (sealed ballots): reclaim their space
    now (PostgreSQL's VACUUM prunes the dead rows), and fold SQLite's write-ahead log, which
    still holds earlier versions of the pages, into the database file. Best effort: a busy
    database keeps them until its next vacuum or checkpoint."""
    if engine().current_transaction.get() is not None:
        return  # inside a larger transaction (the demo's seeding): the rows are not gone yet
    try:
        if isinstance(engine(), SQLite):
            await engine().run_ddl("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            await engine().run_ddl(f'VACUUM "{table}"')
    except Exception as busy:  # never turns a closed vote into an error page
        logger.warning("Could not scrub %s after deleting from it: %s", table, busy)


def index(table: str, *columns: str, unique: bool = False) -> Any:
    """A migration step creating an index, in SQL both engines accept.

    Piccolo's `Unique` constraint is added with ALTER TABLE ... ADD CONSTRAINT, which
    SQLite cannot run; a unique index enforces the same rule on both. Piccolo runs raw
    steps before it creates tables, so these go in a migration of their own.
    """
    name = f"{table}_{'_'.join(columns)}_{'key' if unique else 'idx'}"
    quoted = ", ".join(f'"{column}"' for column in columns)
    kind = "UNIQUE INDEX" if unique else "INDEX"

    async def create() -> None:
        await engine().run_ddl(f'CREATE {kind} IF NOT EXISTS "{name}" ON "{table}" ({quoted})')

    return create
