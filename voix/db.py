"""Database engines chosen by DATABASE_URL, and the few operations every domain shares.

Engines are swapped by configuration: the two subclasses below carry the differences
(how a write transaction starts, how the database is prepared) so that no domain code
asks which engine it runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar
from urllib.parse import urlsplit

import aiosqlite
import asyncpg  # type: ignore[import-untyped]
import piccolo.table
from piccolo.engine import Engine, engine_finder
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory
from piccolo.query.functions.aggregate import Count
from piccolo.querystring import QueryString

from voix.settings import get_settings

logger = logging.getLogger("voix")
P = ParamSpec("P")
T = TypeVar("T")


# Readiness has its own deadline, shorter than an orchestrator's probe, and its own connection:
# a pool busy with requests must not make a healthy database look dead.
READY_TIMEOUT = 2.0
# Connections per process to PostgreSQL (voix.db.LeanPool): two workers and the jobs stay far
# below the server's 100.
POOL_SIZE = 10
# And those whose statements are planned for their values (planned_for_values).
PLANNED_POOL_SIZE = 4
# An idle connection older than this is closed rather than used (asyncpg's pool's default):
# a firewall or a NAT may have dropped it silently.
IDLE_LIFETIME = 300.0
# A write every engine must accept when it is ready, that changes nothing: on Piccolo's table
# of migrations (there once migrated), rolled back. A read-only SQLite file, or a PostgreSQL in
# recovery or set read-only, refuses it even though no row matches.
_WRITE_PROBE = 'UPDATE "migration" SET "name" = "name" WHERE 1 = 0'

# What SQLite says when the file cannot be written (or read) right now, whatever the query.
_SQLITE_OUTAGES = (
    "readonly database",
    "database is locked",
    "disk is full",
    "unable to open database file",
    "disk i/o error",
)
_SQLITE_WRITES_REFUSED = ("readonly database", "database is locked", "disk is full")


# Where a plain ConnectionError or TimeoutError must have come from to mean the database:
# the same errors from a mail server or a worker are those services' business, not an outage.
_DATABASE_MODULES = frozenset({"asyncpg", "aiosqlite", "piccolo", "sqlite3", __name__})


def _raised_by_database(error: BaseException) -> bool:
    frame = error.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module in _DATABASE_MODULES or module.split(".", 1)[0] in _DATABASE_MODULES:
            return True
        frame = frame.tb_next
    return False


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        return any(words in str(error).lower() for words in _SQLITE_OUTAGES)
    if isinstance(error, asyncpg.InterfaceError):
        return "closed" in str(error)  # a connection lost under the pool
    if isinstance(error, asyncpg.QueryCanceledError):
        return False  # a statement timeout, or a query an administrator cancelled: not away
    if isinstance(error, ConnectionError | TimeoutError):  # refused, reset, no answer
        return _raised_by_database(error)
    return isinstance(
        error,
        asyncpg.PostgresConnectionError  # class 08: connection failures
        | asyncpg.OperatorInterventionError  # class 57: shutting down, starting up
        | asyncpg.InsufficientResourcesError  # class 53: disk full, too many connections
        | asyncpg.ReadOnlySQLTransactionError,  # a standby, or a primary set read-only
    )


def outage_cause(error: BaseException | None) -> BaseException | None:
    """The error, or the one behind it, that says the database is away rather than the code wrong."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _is_outage(error):
            return error
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                if (found := outage_cause(inner)) is not None:
                    return found
        error = error.__cause__ or error.__context__
    return None


def writes_refused(error: BaseException) -> bool:
    """The database reads but does not write: only a write proves it is back."""
    if isinstance(error, sqlite3.OperationalError):
        return any(words in str(error).lower() for words in _SQLITE_WRITES_REFUSED)
    return isinstance(error, asyncpg.ReadOnlySQLTransactionError | asyncpg.DiskFullError)


class Outage:
    """Whether the database is away, so that an outage is logged when it starts, at most once a
    minute while it lasts, and when it ends: not once per request, which would bury the cause."""

    LOG_EVERY = 60.0

    def __init__(self) -> None:
        self.since: float | None = None
        self.failures = 0
        self.logged_at = 0.0
        self.writes_only = False

    def failed(self, cause: BaseException) -> None:
        if getattr(cause, "_voix_outage_noted", False):
            return  # one failure seen by the engine and again by the error page
        cause._voix_outage_noted = True  # type: ignore[attr-defined]
        now = time.monotonic()
        if self.since is None:
            self.since, self.failures, self.logged_at = now, 1, now
            self.writes_only = writes_refused(cause)
            # With its traceback, once: where it struck tells a full disk from a lost server.
            logger.error(
                "The database is unavailable: %s: %s",
                type(cause).__name__,
                cause,
                exc_info=cause,
            )
            return
        self.failures += 1
        self.writes_only = self.writes_only and writes_refused(cause)
        if now - self.logged_at >= self.LOG_EVERY:
            self.logged_at = now
            logger.error(
                "The database is still unavailable after %.0f s (%d failures): %s: %s",
                now - self.since,
                self.failures,
                type(cause).__name__,
                cause,
            )

    def answered(self, *, wrote: bool) -> None:
        if self.since is None or (self.writes_only and not wrote):
            return
        logger.warning(
            "The database answers again after %.0f s (%d failures)",
            time.monotonic() - self.since,
            self.failures,
        )
        self.since = None


outage = Outage()


@asynccontextmanager
async def best_effort() -> AsyncIterator[None]:
    """Around a write a page can do without (a session's last sight, read counters): when the
    database refuses writes, the page still shows what it could read. Other errors still raise."""
    try:
        yield
    except Exception as error:
        if (cause := outage_cause(error)) is None:
            raise
        outage.failed(cause)


class _QueryCounting:
    """Counts statements sent, so tests and benchmarks can catch N+1 queries; notes outages."""

    queries_run = 0

    async def run_querystring(self, querystring: Any, in_pool: bool = True) -> Any:
        self.queries_run += 1
        try:
            result = await super().run_querystring(querystring, in_pool=in_pool)  # type: ignore[misc]
        except Exception as error:
            if (cause := outage_cause(error)) is not None:
                outage.failed(cause)
            raise
        if outage.since is not None:  # rare: the statement's text is worth reading then
            # Compiled: a prepared query (Prepared) carries its SQL only there.
            sql, _ = querystring.compile_string(engine_type=self.engine_type)  # type: ignore[attr-defined]
            outage.answered(wrote=_writes(sql))
        return result


def _writes(sql: str) -> bool:
    words = sql.lstrip().split(None, 1)
    return bool(words) and words[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE")


class SQLite(_QueryCounting, SQLiteEngine):
    def __init__(self, path: str) -> None:
        # A generous busy timeout: concurrent writers queue instead of failing.
        super().__init__(path=path, timeout=30)

    def write_transaction(self) -> Any:
        # IMMEDIATE takes the write lock up front, so two writers never deadlock
        # upgrading a read lock; they wait in turn within the busy timeout.
        return self.transaction(transaction_type=TransactionType.immediate)

    async def prepare(self) -> None:
        # A fresh clone has no var/ yet (the development key, which once made it, lives
        # elsewhere now): SQLite creates the file, not its folder.
        Path(self.connection_kwargs["database"]).parent.mkdir(parents=True, exist_ok=True)
        await self.run_ddl("PRAGMA journal_mode=WAL")

    async def ready(self) -> None:
        """Reads the file and takes its write lock for a write that changes nothing; raises if
        it cannot. A connection of its own, as every SQLite query has."""
        path = self.connection_kwargs["database"]
        async with aiosqlite.connect(path, timeout=READY_TIMEOUT / 2, isolation_level=None) as conn:
            await (await conn.execute("SELECT count(*) FROM sqlite_master")).fetchall()
            # IMMEDIATE: a writer holding the lock past the timeout is "not ready" too.
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.execute(_WRITE_PROBE)
            finally:
                await conn.execute("ROLLBACK")

    # Reads outside a transaction share one connection per event loop: piccolo opens the file
    # (a thread, a connection, two pragmas, a commit) for each query, 1.8 ms of CPU against 0.1.
    # In autocommit mode each read sees what was committed when it started, as before; writes
    # and transactions keep a connection of their own, so a writer waiting for the lock never
    # holds the readers up. Each loop has its own (a test client's lifespan may run on another
    # loop, in another thread, at the same time): a loop never closes another's. A connection
    # that failed is retired: new reads open another, and it closes once the reads still
    # running on it have ended (closing it under them made them fail with "Connection closed").
    async def _read_connection(self) -> aiosqlite.Connection:
        loop = asyncio.get_running_loop()
        readers = self._readers()
        if (reader := readers.get(loop)) is not None:
            return reader
        for other, old in list(readers.items()):
            if other.is_closed():  # a finished loop's: nothing runs on it any more
                del readers[other]
                old.stop()
        connection = aiosqlite.connect(**{**self.connection_kwargs, "isolation_level": None})
        connection._thread.daemon = True  # never holds the interpreter's exit
        await connection
        connection.row_factory = dict_factory  # type: ignore[assignment]
        if (reader := readers.get(loop)) is not None:  # another read made one meanwhile
            await connection.close()
            return reader
        readers[loop] = connection
        return connection

    def _readers(self) -> dict[asyncio.AbstractEventLoop, aiosqlite.Connection]:
        if (readers := self.__dict__.get("_reader_by_loop")) is None:
            readers = self.__dict__["_reader_by_loop"] = {}
        return readers

    _in_use: ClassVar[dict[int, int]] = {}  # id(connection) -> reads running on it
    _retired: ClassVar[set[int]] = set()

    def _retire(self, connection: aiosqlite.Connection) -> None:
        readers = self._readers()
        for loop, reader in list(readers.items()):
            if reader is connection:
                del readers[loop]
        self._retired.add(id(connection))

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        if query.lstrip()[:6].upper() != "SELECT":  # piccolo says "generic" of every query
            return await super()._run_in_new_connection(query, args, query_type, table)
        reader = await self._read_connection()
        key = id(reader)
        self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            async with reader.execute(query, args or []) as cursor:
                return await cursor.fetchall()
        except sqlite3.Error:
            self._retire(reader)  # the next read opens the file again
            raise
        finally:
            self._in_use[key] -= 1
            if not self._in_use[key]:
                del self._in_use[key]
                if key in self._retired:
                    self._retired.discard(key)
                    await reader.close()

    async def start(self) -> None:
        """SQLite has no pool: writes open the file, reads share a connection per event loop
        (opened on the loop's first read)."""

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        readers = self._readers()
        for other, reader in list(readers.items()):
            del readers[other]
            if other is loop:
                await reader.close()
            else:
                reader.stop()  # its thread closes the connection and ends


class LeanPool:
    """The connections piccolo's statements and transactions run on, handed out and taken back
    with nothing else done: asyncpg's pool resets each connection it takes back, arms a timer
    for idle ones and queues through an asyncio.Queue, about 0.19 ms of CPU per statement on
    the project's machine, more than the statement itself (0.13 ms; issue 15). Piccolo takes a
    connection per statement, so that was paid on every query of every page.

    At most `size` connections are open; a caller waits, first come first served, when all are
    out. A connection comes back into use only clean: a transaction left open (an error in a
    commit, say), a statement cancelled midway (the client went) or a closed connection is
    terminated instead, and another is opened when needed. Nothing run here leaves session
    state behind (no LISTEN: voix.live has connections of its own; advisory locks are taken
    for a transaction, `pg_advisory_xact_lock`, and end with it)."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._size = size
        # Idle connections with the time each came back, the latest last.
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def get_max_size(self) -> int:
        return self._size

    def get_size(self) -> int:
        return self._open

    def acquire(self) -> _Acquiring:
        return _Acquiring(self)

    async def _take(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the pool is closed")
            while self._idle:
                connection, since = self._idle.pop()
                if not connection.is_closed() and time.monotonic() - since < IDLE_LIFETIME:
                    return connection
                connection.terminate()  # closed, or idle long enough for a firewall to drop it
                self._open -= 1
            if self._open < self._size:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: the turn goes to the next
                else:
                    with contextlib.suppress(ValueError):  # _wake may have passed it by
                        self._waiters.remove(waiter)
                raise

    async def release(self, connection: asyncpg.Connection) -> None:
        self.put_back(connection)

    def put_back(self, connection: asyncpg.Connection) -> None:
        if any(idle is connection for idle, _ in self._idle):
            raise asyncpg.InterfaceError("this connection was already given back")
        if (
            self._closed
            or connection.is_closed()
            or connection.is_in_transaction()
            or connection._top_xact is not None  # a BEGIN the server refused, say
            or connection._protocol._is_cancelling()  # asyncpg's own test
        ):
            connection.terminate()
            self._open -= 1
        else:
            self._idle.append((connection, time.monotonic()))
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._open -= 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=READY_TIMEOUT)
            if not connection.is_closed():
                connection.terminate()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the pool is closed"))


class _Acquiring:
    """`await pool.acquire()` (piccolo's transactions, which give it back with release) and
    `async with pool.acquire() as connection`, as asyncpg's pool offers both."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: LeanPool) -> None:
        self._pool = pool
        self._connection: asyncpg.Connection | None = None

    def __await__(self) -> Any:
        return self._pool._take().__await__()

    async def __aenter__(self) -> asyncpg.Connection:
        self._connection = await self._pool._take()
        return self._connection

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            self._pool.put_back(self._connection)
            self._connection = None


class _Transaction(PostgresTransaction):
    """piccolo's transaction, which gives its connection back and leaves its task only when
    all goes well: a BEGIN or COMMIT cancelled, a COMMIT refused or a ROLLBACK on a lost
    connection kept the connection out of the pool for good (ten of them, and every statement
    of the process waited) and left the task "in" a dead transaction. Here the connection goes
    back whatever happened (LeanPool.put_back terminates it unless it is clean) and the task
    leaves the transaction."""

    _pool: LeanPool | None = None

    async def __aenter__(self) -> Any:
        if self._parent is not None:
            return self._parent
        self._pool = self.engine.pool  # the pool it came from, even after a stop and a start
        self.connection = await self.get_connection()
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException:
            await self._give_back()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            try:
                await self._give_back()
            finally:
                self.engine.current_transaction.reset(self.context)
        return exception is None

    async def _give_back(self) -> None:
        if self._pool is not None:
            self._pool.put_back(self.connection)
            return
        try:  # no pool (the command line): piccolo's own connection, closed
            await self.connection.close()
        except BaseException:
            self.connection.terminate()
            raise


class Postgres(_QueryCounting, PostgresEngine):
    def __init__(self, dsn: str) -> None:
        # Statements run with PostgreSQL's default plan caching: asyncpg keeps each prepared,
        # and after five runs a generic plan spares the planning (the session's statement
        # took 0.44 ms to plan and 0.1 ms to run, at every page). The lists, searches and map
        # points are planned for their values instead (planned_for_values: the generic plan of
        # a search cannot use its trigram and partial indexes; 40 ms became 230 ms at 100,000
        # rows), on connections of their own.
        super().__init__(config={"dsn": dsn})
        self._planned: LeanPool | None = None
        # Kept aside from the request pool for the readiness checks, opened on first use.
        self._health: asyncpg.Connection | None = None
        self._health_lock = asyncio.Lock()

    async def ready(self) -> None:
        """A read and a write that changes nothing, rolled back, on the connection kept aside
        for health; raises if the database cannot. A connection that failed is dropped, so the
        next check opens a new one (after a restart, say)."""
        async with self._health_lock:
            try:
                if self._health is None or self._health.is_closed():
                    self._health = await asyncpg.connect(self.config["dsn"], timeout=READY_TIMEOUT)
                transaction = self._health.transaction()
                await transaction.start()
                try:
                    await self._health.fetchval('SELECT count(*) FROM "migration"')
                    await self._health.execute(_WRITE_PROBE)
                finally:
                    await transaction.rollback()
            except BaseException:  # the deadline's cancellation too: its state is unknown
                self._drop_health()
                raise

    def _drop_health(self) -> None:
        if self._health is not None:
            self._health.terminate()
            self._health = None

    def write_transaction(self) -> Any:
        return self.transaction()

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return _Transaction(engine=self, allow_nested=allow_nested)

    async def prepare(self) -> None:
        """Nothing to prepare beyond migrations."""

    async def start(self) -> None:
        if self.pool is None:
            self.pool = LeanPool(lambda: asyncpg.connect(**self.config), size=POOL_SIZE)
            self._planned = LeanPool(
                lambda: asyncpg.connect(
                    **self.config, server_settings={"plan_cache_mode": "force_custom_plan"}
                ),
                size=PLANNED_POOL_SIZE,
            )

    async def stop(self) -> None:
        self._drop_health()
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()
        if self._planned is not None:
            planned, self._planned = self._planned, None
            await planned.close()

    async def _run_in_pool(self, query: str, args: Sequence[Any] | None = None) -> Any:
        """piccolo's, without the context manager's extra awaits: a statement on a connection
        of the pool, given back at once (or terminated, LeanPool.put_back)."""
        pool = self._planned if _values_planned.get() else self.pool
        if pool is None:
            raise ValueError("A pool isn't currently running.")
        connection = await pool._take()
        try:
            return await connection.fetch(query, *(args or ()))
        finally:
            pool.put_back(connection)


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


_values_planned: ContextVar[bool] = ContextVar("voix_values_planned", default=False)


def planned_for_values(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """The statements `function` sends outside a transaction are planned by PostgreSQL for
    their values, never with a generic plan: for the lists, searches and map points, whose
    indexes (trigram, partial) a generic plan cannot use. Nothing changes on SQLite."""

    @functools.wraps(function)
    async def planned(*args: P.args, **kwargs: P.kwargs) -> T:
        token = _values_planned.set(True)
        try:
            return await function(*args, **kwargs)
        finally:
            _values_planned.reset(token)

    return planned


_engine: SQLite | Postgres | None = None
CONF = "voix.piccolo_conf"  # the only configuration module (PICCOLO_CONF) the project has


def engine() -> SQLite | Postgres:
    """The process's engine, from DATABASE_URL, made once: voix.piccolo_conf hands this one to
    Piccolo's commands (PICCOLO_CONF), and the tables find it here (`_find_engine`)."""
    global _engine  # noqa: PLW0603 — one per process
    if _engine is None:
        conf = os.environ.get("PICCOLO_CONF", CONF)
        if conf != CONF:
            raise RuntimeError(f"PICCOLO_CONF must point at {CONF}, not {conf!r}")
        _engine = engine_from_url(get_settings().database_url)
    return _engine


def _find_engine(module_name: str | None = None) -> Engine | None:
    """What a Piccolo table asks for its engine when none was given to it: this process's. By
    default Piccolo's finder would import PICCOLO_CONF's module through piccolo.conf.apps,
    which imports black and the migration machinery (0.2-0.4 s at each start-up, issue 15)
    only for the same engine."""
    return engine() if module_name in (None, CONF) else engine_finder(module_name)


piccolo.table.engine_finder = _find_engine  # read by TableMeta.db at a table's first query


class Param:
    """Where a value goes in a query compiled once (`Prepared`)."""

    def __init__(self, index: int) -> None:
        self.index = index


class Prepared:
    """A piccolo query built and compiled to SQL once per database engine, then sent again with
    other values: building a select with joins costs more CPU than the database spends running
    it (piccolo resolves each joined column through __getattribute__ and dir() at every call).

        _BY_ID = db.Prepared(lambda id: Proposal.select(...).where(Proposal.id == id))
        rows = await _BY_ID.rows(proposal_id)

    `build` receives one `Param` per value and must give the same SQL whatever the values
    (no branching on them); what it returns is run as a select (no .first(), no .output()).
    """

    def __init__(self, build: Callable[..., Any]) -> None:
        self.build = build
        self._compiled: dict[str, tuple[str, list[Any]]] = {}

    def _sql(self, engine_type: str) -> tuple[str, list[Any]]:
        if (found := self._compiled.get(engine_type)) is None:
            arity = self.build.__code__.co_argcount
            query = self.build(*(Param(i) for i in range(arity)))
            (querystring,) = query.querystrings
            found = self._compiled[engine_type] = querystring.compile_string(engine_type)
        return found

    async def rows(self, *values: Any) -> list[dict[str, Any]]:
        found = engine()
        sql, args = self._sql(found.engine_type)
        bound = [values[arg.index] if isinstance(arg, Param) else arg for arg in args]
        return await _send(found, sql, bound)

    async def first(self, *values: Any) -> dict[str, Any] | None:
        found = await self.rows(*values)
        return found[0] if found else None


class Statement:
    """SQL written by hand, `{}` where each value goes, per engine type ("postgres",
    "sqlite"): numbered for the engine once, then sent as it is (piccolo's Raw parses and
    rebuilds its text at every call). For the statement every page sends (the session's)."""

    def __init__(self, sql: dict[str, str]) -> None:
        self._sql = {
            kind: _numbered(text, "$" if kind == "postgres" else "?") for kind, text in sql.items()
        }

    async def rows(self, *values: Any) -> list[dict[str, Any]]:
        found = engine()
        return await _send(found, self._sql[found.engine_type], list(values))


async def _send(found: SQLite | Postgres, sql: str, values: list[Any]) -> list[dict[str, Any]]:
    """SQL already in the engine's form, sent as it is (piccolo sends frozen strings unparsed)."""
    querystring = QueryString("")
    querystring._frozen_compiled_strings = (sql, values)
    rows = await found.run_querystring(querystring)
    return [row if isinstance(row, dict) else dict(row.items()) for row in rows]


def _numbered(sql: str, mark: str) -> str:
    pieces = sql.split("{}")
    if mark == "?":
        return "?".join(pieces)
    return "".join(
        piece + (f"${i}" if i < len(pieces) else "") for i, piece in enumerate(pieces, start=1)
    )


def write_transaction() -> Any:
    """A transaction for a read-check-write sequence that must not interleave."""
    return engine().write_transaction()


def in_transaction() -> bool:
    """Whether this task is inside a transaction: what it reads there may yet be rolled back."""
    return engine().current_transaction.get() is not None


async def migrate() -> None:
    # Piccolo's migration commands import black, among others: loaded to migrate, not to serve.
    from piccolo.apps.migrations.commands.forwards import run_forwards  # noqa: PLC0415

    db = engine()
    await db.prepare()
    await run_forwards(app_name="all")
    # Data the schema's migrations mark and the application's code completes.
    from exports.services import freeze_legacy  # noqa: PLC0415 — exports imports this module

    await freeze_legacy()
    # The triggers keeping tables' revisions (what their pages cache is keyed on): code, set
    # again at each migration.
    from tables import revision  # noqa: PLC0415 — tables' models import this module

    await revision.install()
    await analyze()


async def analyze() -> None:
    """Fresh statistics for the query planner: after migrations, and after a large import (the
    demo's seed, a benchmark's rows). Without them PostgreSQL guesses, and a list page it could
    read from an index in half a millisecond took 170 ms.

    PostgreSQL: VACUUM (ANALYZE) outside a transaction (where VACUUM cannot run: ANALYZE alone).
    The vacuum matters after an import as much as the statistics: it marks the new rows visible
    to all, so that counts read the lists' partial indexes alone, and it records the size of GIN
    indexes, without which the planner prices a trigram search above reading the whole table.
    Autovacuum does both as tables grow. SQLite never analyses by itself, so each `voix migrate`
    (every start of `make run` and of a deployment) brings its statistics up to date; a full
    ANALYZE: with `analysis_limit`'s samples SQLite misjudged the lists' partial indexes."""
    db = engine()
    if isinstance(db, Postgres) and db.current_transaction.get() is None:
        await db.run_ddl("VACUUM (ANALYZE)")
    else:
        await db.run_ddl("ANALYZE")


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
