"""Test configuration: a real database (SQLite or PostgreSQL) chosen by VOIX_TEST_DATABASE.

The environment is set before any project module is imported, because Piccolo reads
its engine from voix.piccolo_conf at first use.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DATABASE_KIND = os.environ.get("VOIX_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get(
    "VOIX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
VAR_DIR = tempfile.mkdtemp(prefix="voix-test-")
os.environ["VOIX_VAR_DIR"] = VAR_DIR
os.environ["VOIX_ENV"] = "test"
os.environ["VOIX_SECRET_KEY"] = "test-secret-key-that-is-long-enough-0123456789"
os.environ["VOIX_BASE_URL"] = "http://testserver.local"  # where the test client sends requests


def _postgres_database_url() -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/voix_test_{os.getpid()}"))


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


if DATABASE_KIND == "postgres":
    os.environ["DATABASE_URL"] = _postgres_database_url()
    _db_name = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{_db_name}"'))
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{_db_name}"'))
elif DATABASE_KIND == "sqlite":
    os.environ["DATABASE_URL"] = f"sqlite:///{VAR_DIR}/test.sqlite3"
else:
    raise RuntimeError(f"VOIX_TEST_DATABASE must be sqlite or postgres, not {DATABASE_KIND!r}")

import httpx  # noqa: E402
from litestar.channels import ChannelsPlugin  # noqa: E402

from translations import services as content  # noqa: E402
from voix import db  # noqa: E402
from voix.app import create_app  # noqa: E402

# Children first, so foreign keys never block the clean-up.
ALL_TABLES = [
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


def pytest_sessionstart(session: pytest.Session) -> None:
    asyncio.run(db.migrate())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if DATABASE_KIND == "postgres":
        name = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    shutil.rmtree(VAR_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
async def clean_database() -> AsyncIterator[None]:
    yield
    content.forget_reads()  # counted in memory, not yet written: of this test's objects
    async with db.engine().transaction():
        for table in ALL_TABLES:
            await db.engine().run_ddl(f'DELETE FROM "{table}"')


@pytest.fixture
async def app() -> AsyncIterator[object]:
    """The real ASGI app, its database engine started in the test's own event loop.

    (Litestar's AsyncClient runs the app in another thread and loop, where a
    PostgreSQL pool made for one loop cannot serve the other.)
    """
    await db.engine().start()
    application = create_app()
    try:
        # The live channels start with the app's lifespan, which ASGITransport does not run.
        async with application.plugins.get(ChannelsPlugin):
            yield application
    finally:
        await db.engine().stop()


def make_client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    )


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as test_client:
        yield test_client
