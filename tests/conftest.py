"""Test configuration: a real database (SQLite or PostgreSQL) chosen by VOIX_TEST_DATABASE.

The environment is set before any project module is imported, because Piccolo reads
its engine from voix.piccolo_conf at first use.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

DATABASE_KIND = os.environ.get("VOIX_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get(
    "VOIX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# pytest-xdist's worker ("gw0", "gw1"…), or "" without -n: each worker has its own database.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


# Files in it are made by tempfile.mkdtemp and friends, private to the suite.
MEMORY_FS = "/dev/shm"  # noqa: S108


def _memory_temp_dir() -> str | None:
    """Where the suite's files go: VOIX_TEST_TMPDIR if set, else /dev/shm when it is a writable
    file system in memory with room to spare. The SQLite database, the uploads, the backups and
    the servers' logs then live in memory: nothing the tests check depends on the disk, and each
    commit's fsync costs nothing there (on a disk it is most of a small write's time)."""
    if chosen := os.environ.get("VOIX_TEST_TMPDIR"):
        return chosen
    try:
        room = os.statvfs(MEMORY_FS)
    except OSError:
        return None
    if room.f_bavail * room.f_frsize < 2 * 1024**3 or not os.access(MEMORY_FS, os.W_OK):
        return None
    return MEMORY_FS


if (_TEMP := _memory_temp_dir()) is not None:
    # The environment too: the servers, `voix` commands and worker processes the tests start
    # write their temporary files where the tests look for them.
    os.environ["TMPDIR"] = tempfile.tempdir = _TEMP
VAR_DIR = tempfile.mkdtemp(prefix="voix-test-")
os.environ["VOIX_VAR_DIR"] = VAR_DIR
os.environ["VOIX_ENV"] = "test"
os.environ["VOIX_SECRET_KEY"] = "test-secret-key-that-is-long-enough-0123456789"
os.environ["VOIX_BASE_URL"] = "http://testserver.local"  # where the test client sends requests


def _postgres_database_url() -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/voix_test_{os.getpid()}{WORKER}"))


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _create_postgres_database(name: str) -> None:
    await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}"')
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    # A commit does not wait for its WAL to reach the disk: what another connection sees is
    # unchanged; only a crash of the server could lose the last commits of a test database.
    # (The tests' own clusters, tests/servers.py, run with fsync=off for the same reason.)
    await _postgres_admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')


if DATABASE_KIND == "postgres":
    os.environ["DATABASE_URL"] = _postgres_database_url()
elif DATABASE_KIND == "sqlite":
    os.environ["DATABASE_URL"] = f"sqlite:///{VAR_DIR}/test.sqlite3"
else:
    raise RuntimeError(f"VOIX_TEST_DATABASE must be sqlite or postgres, not {DATABASE_KIND!r}")

import httpx  # noqa: E402
from litestar import Litestar  # noqa: E402
from litestar.channels import ChannelsPlugin  # noqa: E402

from translations import services as content  # noqa: E402
from voix import cache, db, live, logs  # noqa: E402
from voix.app import create_app  # noqa: E402
from voix.settings import Settings, get_settings  # noqa: E402

# Children first, so foreign keys never block the clean-up. Every table but Piccolo's
# "migration" (tests/test_suite.py checks that none is missing).
ALL_TABLES = [
    "notification_delivery",
    "notification",
    "notification_event",
    "rsvp",
    "follow",
    "notification_preference",
    "room_count_entry",
    "room_count",
    "tablet",
    "minutes_link",
    "minutes",
    "speaker",
    "attendance",
    "agenda_item",
    "meeting",
    "audit_entry",
    "job",
    "key_check",  # remembered by the next start: some tests start servers with another key
    "throttle",
    "login_card",
    "recovery_code",
    "stored_pdf",
    "institution_response_item",
    "institution_response",
    "brief_sent_proposal",
    "brief_sent",
    "brief_photo",
    "brief_version",
    "brief_signatory",
    "brief_addressee",
    "brief_item",
    "brief",
    "ballot",
    "sealed_ballot",
    "vote_participation",
    "vote_decision",
    "vote_option",
    "vote",
    "proposal_translation",
    "proposal_media",
    "proposal_report",
    "proposal_comment",
    "proposal_support",
    "proposal_status_change",
    "proposal",
    "coordinator",
    "institution",
    "membership",
    "table_district",
    "neighbourhood_table",
    "legal_text",
    "content_translation",
    "content_origin",
    "content_read",
    "organisation",
    "named_place",
    "district",
    "login_session",
    "account",
]


def pytest_report_header(config: pytest.Config) -> str:
    return f"voix: database {DATABASE_KIND} ({os.environ['DATABASE_URL']})"


def _runs_no_tests(config: pytest.Config) -> bool:
    """pytest-xdist's controller (-n N): its workers run the tests, each on a database of its
    own (their names end with the worker's id)."""
    return not WORKER and bool(getattr(config.option, "numprocesses", None))


def pytest_sessionstart(session: pytest.Session) -> None:
    if _runs_no_tests(session.config):
        return
    if DATABASE_KIND == "postgres":
        asyncio.run(_create_postgres_database(_database_name()))
    asyncio.run(db.migrate())


def _database_name() -> str:
    return urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if DATABASE_KIND == "postgres" and not _runs_no_tests(session.config):
        name = _database_name()
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    shutil.rmtree(VAR_DIR, ignore_errors=True)


# One statement per table, sent at once: a single round trip and a single commit.
_CLEAN_UP = "".join(f'DELETE FROM "{table}";' for table in ALL_TABLES)


async def _delete_every_row() -> None:
    engine = db.engine()
    if isinstance(engine, db.SQLite):
        _empty_sqlite(engine.connection_kwargs["database"])
    elif engine.pool is not None:
        async with engine.pool.acquire() as connection:
            # Without parameters: the simple protocol, where several statements are one
            # implicit transaction.
            await connection.execute(_CLEAN_UP)
    else:
        # No pool in this loop (a synchronous test's, or a test that stopped the engine): a
        # connection kept for the whole session, in a thread of its own, and not one opened
        # and closed after each test (10 to 40 ms each on PostgreSQL, for ~1,500 tests).
        await asyncio.wrap_future(_CLEANER.run(engine.config, _CLEAN_UP))


class _Cleaner:
    """One PostgreSQL connection on an event loop of its own, in a daemon thread, which
    empties the tables for tests whose own loop holds no pool (each test has a loop of its own,
    where a connection of another loop cannot serve)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None
        self._config: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def run(self, config: dict[str, Any], statement: str) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="test-cleaner", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(self._execute(config, statement), self._loop)

    async def _execute(self, config: dict[str, Any], statement: str) -> None:
        import asyncpg

        for attempt in (1, 2):
            if self._connection is None or self._connection.is_closed() or config != self._config:
                if self._connection is not None:
                    self._connection.terminate()
                self._connection = await asyncpg.connect(**config)
                self._config = dict(config)
            try:
                await self._connection.execute(statement)
                return
            except (asyncpg.PostgresConnectionError, ConnectionError, OSError):
                # The server restarted under a test (tests/test_live_restart.py): once more,
                # on a new connection.
                self._connection.terminate()
                self._connection = None
                if attempt == 2:
                    raise
            except asyncpg.InterfaceError:
                self._connection.terminate()
                self._connection = None
                if attempt == 2:
                    raise


_CLEANER = _Cleaner()

# The tables that hold rows, in one statement: most tests fill a few of the sixty.
_NON_EMPTY = " UNION ALL ".join(
    f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM \"{table}\")" for table in ALL_TABLES
)
# path -> (the file's device and inode, a connection to it), kept for the session: a new
# connection reads the whole schema again (3 ms), and deleting from sixty tables, most of them
# empty, takes another 6 ms, after each of ~4,000 tests.
_SQLITE_CLEANERS: dict[str, tuple[tuple[int, int], sqlite3.Connection]] = {}


def _empty_sqlite(path: str) -> None:
    """Deletes every row of the tables that have some, on a connection of its own (as every
    SQLite write has) with foreign keys on, as Piccolo's, in one write transaction."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return  # nothing made it yet: nothing to empty
    held = _SQLITE_CLEANERS.get(path)
    if held is None or held[0] != (stat.st_dev, stat.st_ino):  # a test put another file there
        if held is not None:
            held[1].close()
        connection = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA foreign_keys = ON")
        held = _SQLITE_CLEANERS[path] = ((stat.st_dev, stat.st_ino), connection)
    connection = held[1]
    connection.execute("BEGIN IMMEDIATE")
    try:
        full = {row[0] for row in connection.execute(_NON_EMPTY)}
        for table in ALL_TABLES:  # children before parents
            if table in full:
                connection.execute(f'DELETE FROM "{table}"')
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@pytest.fixture(autouse=True)
async def clean_database(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Starts the database engine for each async test, in its event loop (on PostgreSQL, the
    pool of connections a server has: without it, each query would open a connection of its
    own), and empties every table after the test.

    A synchronous test may run its own event loop (asyncio.run), where a pool made in this one
    could not serve: there the engine stays unstarted, as the `voix` commands leave it.
    """
    started = (
        inspect.iscoroutinefunction(request.function)
        and "engine_left_unstarted" not in request.fixturenames
        and not _pool_running()
    )
    if started:
        await db.engine().start()
    try:
        yield
    finally:
        try:
            content.forget_reads()  # counted in memory, not yet written: of this test's objects
            await _delete_every_row()
        finally:
            if started and _pool_running():
                await db.engine().stop()


@pytest.fixture
def empty_cache() -> Iterator[None]:
    """Nothing kept in voix.cache before or after the test (ids and revisions come back
    between tests): `pytestmark = pytest.mark.usefixtures("empty_cache")`."""
    cache.pages.clear()
    yield
    cache.pages.clear()


@pytest.fixture
def engine_left_unstarted() -> None:
    """For a test whose own code starts and stops the engine (an app's lifespan, as a server
    runs it): clean_database leaves it unstarted."""


def _pool_running() -> bool:
    return getattr(db.engine(), "pool", None) is not None


_APP: dict[Settings, Litestar] = {}


def shared_app() -> Litestar:
    """create_app() once per configuration: assembling the app (Litestar checks every handler's
    signature, Jinja compiles the templates it renders) costs more than most tests. The app
    keeps no state of its own between requests but its live channels, made anew for each test;
    a test that changes the settings (get_settings.cache_clear) gets an app made with them."""
    settings = get_settings()
    application = _APP.get(settings)
    if application is None:
        _APP.clear()
        application = _APP[settings] = create_app()
    else:
        logs.install()  # as create_app does, should a test have taken the filters off
    # A plugin as channels_plugin() makes, in place of the last test's (whose backend and
    # subscribers belonged to that test's event loop): the app holds this very object.
    plugin = application.plugins.get(ChannelsPlugin)
    plugin.__dict__.update(live.channels_plugin().__dict__)
    return application


@pytest.fixture
async def app() -> AsyncIterator[object]:
    """The real ASGI app, its database engine started in the test's own event loop.

    (Litestar's AsyncClient runs the app in another thread and loop, where a
    PostgreSQL pool made for one loop cannot serve the other.)
    """
    # clean_database started the engine for async tests; a test that stopped it gets it back.
    started = not _pool_running()
    if started:
        await db.engine().start()
    application = shared_app()
    try:
        # The live channels start with the app's lifespan, which ASGITransport does not run.
        async with application.plugins.get(ChannelsPlugin):
            yield application
    finally:
        if started:
            await db.engine().stop()


def make_client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    )


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as test_client:
        yield test_client
