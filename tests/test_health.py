"""Health that tells the truth (issue 14, failure 3): liveness without the database, readiness
with a read and a write of its own, on a connection kept apart from the request pool."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from httpx import AsyncClient

from tests.conftest import DATABASE_KIND, POSTGRES_URL, _postgres_admin
from voix import db
from voix.db import engine_from_url

CLOSED_PORT = "postgresql://postgres@127.0.0.1:9/nothing"


async def test_ready_and_health_answer_ok_with_a_read_and_a_write(client: AsyncClient) -> None:
    for path in ("/health/ready", "/health"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok", "database": "ok"}
        assert "set-cookie" not in response.headers  # no CSRF cookie, no session
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert "set-cookie" not in live.headers


@pytest.mark.filterwarnings("ignore:.*Unable to connect to database")
async def test_unreachable_database_is_not_ready_but_the_process_is_live(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "engine", lambda: engine_from_url(CLOSED_PORT))
    # A session cookie must not send liveness to the database through the principal hook.
    client.cookies.set("voix_session", "x" * 40)
    began = time.monotonic()
    for path in ("/health/ready", "/health"):
        response = await client.get(path)
        assert response.status_code == 503, path
        assert response.json() == {"status": "error", "database": "unreachable"}
        assert response.headers["retry-after"] == "30"
    assert time.monotonic() - began < 2 * db.READY_TIMEOUT + 1
    assert (await client.get("/health/live")).status_code == 200


@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="only PostgreSQL has a request pool")
async def test_a_busy_pool_does_not_make_a_healthy_database_look_dead(client: AsyncClient) -> None:
    pool = db.engine().pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        for path in ("/health", "/health/ready"):
            began = time.monotonic()
            response = await client.get(path)
            took = time.monotonic() - began
            assert response.status_code == 200, f"{path}: {response.text}"
            assert took < 1.5, f"{path} waited {took:.1f} s behind the pool"
    finally:
        for connection in held:
            await pool.release(connection)


@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="a PostgreSQL setting")
async def test_a_read_only_postgresql_is_not_ready(client: AsyncClient) -> None:
    """A standby, or a primary set read-only: reads work, every write fails, so not ready."""
    name = urlsplit(db.engine().config["dsn"]).path.lstrip("/")
    assert (await client.get("/health/ready")).status_code == 200
    await db.engine().stop()  # the next check opens its connection with the new setting
    await _postgres_admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        await db.engine().start()
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "database": "read-only"}
        assert (await client.get("/health/live")).status_code == 200
    finally:
        await db.engine().stop()
        await _postgres_admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await db.engine().start()
    assert (await client.get("/health/ready")).status_code == 200
    assert POSTGRES_URL  # the admin connection goes to the server's own database, not this one
