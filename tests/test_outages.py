"""Outages that say "try again" (issue 14, failure 4): a database that goes away, or a disk
that turns read-only, gives every page a translated 503 with Retry-After, logged once.

Real `voix serve` processes: one on a PostgreSQL this test starts and stops itself, one on a
SQLite file made read-only under it (when the tests run as root, the server runs without the
capabilities that let root write a 0444 file)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import DATABASE_KIND
from tests.factories import t
from tests.servers import OwnPostgres, _output, free_port, own_postgres
from voix.app import RESTING
from voix.settings import PROJECT_ROOT

AS_ROOT = os.geteuid() == 0
UNAVAILABLE = "The database is unavailable"
BACK = "The database answers again"
FRENCH = {"accept-language": "fr"}


def _unprivileged() -> list[str]:
    """Root writes a 0444 file anyway: without these two capabilities it is refused, as a user."""
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] if AS_ROOT else []


def _env(database_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "VOIX_VAR_DIR": str(var_dir),
        "VOIX_ALLOWED_HOSTS": "127.0.0.1",
    }


def _voix(env: dict[str, str], *args: str, stdin: str = "") -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voix.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _migrate(env: dict[str, str]) -> None:
    _voix(env, "migrate")


def _wait(url: str, path: str, process: subprocess.Popen[str], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited:\n{_output(log)}"
        try:
            if httpx.get(url + path, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url}{path} never answered 200:\n{_output(log)}")


@contextmanager
def serve(env: dict[str, str], *, unprivileged: bool = False) -> Iterator[tuple[str, IO[bytes]]]:
    """`voix serve`; yields its URL, once ready, and its output."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                *(_unprivileged() if unprivileged else []),
                *(sys.executable, "-m", "voix.cli", "serve", "--host", "127.0.0.1"),
                *("--port", str(port)),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url, "/health/ready", process, log)
            yield url, log
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.fixture
def throwaway_postgres() -> Iterator[OwnPostgres]:
    with own_postgres() as cluster:
        yield cluster


def assert_resting(response: httpx.Response) -> None:
    """The 503 every page gives while the database is away: translated, with Retry-After."""
    assert response.status_code == 503, response.text[:500]
    assert response.headers["retry-after"] == "30"
    assert '<html lang="fr" dir="ltr">' in response.text
    assert t(RESTING, "fr") in response.text
    if response.request.method == "GET":  # a way to ask again; a form is sent from its page
        path = response.request.url.raw_path.decode()
        assert f'<a href="{path}" class="button">{t("Try again", "fr")}</a>' in response.text
    else:
        assert f'class="button">{t("Try again", "fr")}</a>' not in response.text


@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="a PostgreSQL of the test's own")
def test_postgresql_going_away_gives_503_logged_once(
    throwaway_postgres: OwnPostgres, tmp_path: Path
) -> None:
    env = _env(throwaway_postgres.url, tmp_path)
    _migrate(env)
    with serve(env) as (url, log):
        assert httpx.get(url + "/", headers=FRENCH).status_code == 200
        throwaway_postgres.stop()

        for _ in range(5):
            assert_resting(httpx.get(url + "/", headers=FRENCH, timeout=30))
        # A session cookie sends the request to the database before the page, in a hook.
        session = {"voix_session": "s" * 43}
        assert_resting(httpx.get(url + "/", headers=FRENCH, cookies=session, timeout=30))
        assert_resting(httpx.get(url + "/legal/notice", headers=FRENCH, timeout=30))
        api = httpx.get(url + "/api/v1/tables", timeout=30)
        assert (api.status_code, api.headers["retry-after"]) == (503, "30")
        assert api.json()["detail"] == t(RESTING, "fr")  # no Accept-Language: French
        began = time.monotonic()
        assert httpx.get(url + "/health/ready", timeout=30).status_code == 503
        assert time.monotonic() - began < 3.5
        assert httpx.get(url + "/health/live").status_code == 200
        assert _output(log).count(UNAVAILABLE) == 1, _output(log)
        assert BACK not in _output(log)

        throwaway_postgres.start()
        deadline = time.monotonic() + 30
        while httpx.get(url + "/", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "the site did not come back"
            time.sleep(0.5)
        assert httpx.get(url + "/health/ready").status_code == 200
        assert _output(log).count(BACK) == 1, _output(log)
        assert _output(log).count(UNAVAILABLE) == 1


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="a SQLite file of the test's own")
def test_a_read_only_sqlite_file_reads_pages_and_refuses_writes_with_503(tmp_path: Path) -> None:
    """The database's files turn read-only under a running server: pages that only read
    still answer, a write answers 503 "try again", readiness says read-only, and the log says
    it once, then once when writes work again."""
    var = tmp_path / "var"
    var.mkdir()
    database = var / "voix.sqlite3"
    env = _env(f"sqlite:///{database}", var)
    _migrate(env)
    _voix(env, "user", "add", "ines@example.org", "--name", "Inès", "--role", "admin",
          stdin="a long enough password\n")  # fmt: skip
    with (
        serve(env, unprivileged=True) as (url, log),
        httpx.Client(base_url=url, headers=FRENCH, timeout=30) as browser,
        httpx.Client(base_url=url, headers=FRENCH, timeout=30) as resident,
    ):
        assert browser.get("/").status_code == 200
        assert browser.get("/login").status_code == 200  # its CSRF cookie
        token = browser.cookies["csrftoken"]
        resident.get("/login")
        signed_in = resident.post(
            "/login",
            data={
                "login": "ines@example.org",
                "password": "a long enough password",
                "_csrf_token": resident.cookies["csrftoken"],
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        # Last seen long enough ago that her next page records the sight: a write.
        with closing(sqlite3.connect(database)) as connection, connection:
            connection.execute(
                "UPDATE login_session SET last_seen_at = ?",
                ((datetime.now(UTC) - timedelta(hours=1)).isoformat(),),
            )

        # The file and its write-ahead files: the server holds the file open (its reads share
        # one connection: voix.db.SQLite), and SQLite hands a descriptor opened for writing
        # before the chmod to the next connection of the process; the write-ahead log, which
        # every write goes to first, is opened anew and refuses.
        for path in var.iterdir():
            path.chmod(0o444)
        try:
            ready = browser.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {"status": "error", "database": "read-only"}
            assert browser.get("/health/live").status_code == 200
            her_home = resident.get("/")  # the sight of her session is not recorded: still shown
            assert her_home.status_code == 200
            assert "Inès" in her_home.text
            for _ in range(3):
                assert browser.get("/").status_code == 200  # reading needs no write
                assert browser.get("/legal/notice").status_code == 200
                attempt = browser.post(
                    "/login",
                    data={
                        "login": "someone@example.org",
                        "password": "x",
                        "_csrf_token": token,
                    },
                )
                assert_resting(attempt)
            assert _output(log).count(UNAVAILABLE) == 1, _output(log)
            assert BACK not in _output(log)  # reads that worked do not end the outage
        finally:
            # SQLite made any write-ahead file it created meanwhile as read-only as the
            # database: the operator gives write access back to them all.
            for path in var.iterdir():
                path.chmod(0o644)
        assert browser.get("/health/ready").status_code == 200
        assert _output(log).count(BACK) == 1, _output(log)


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="a SQLite file of the test's own")
def test_a_read_only_sqlite_disk_gives_503_on_every_page(tmp_path: Path) -> None:
    """The whole disk turns read-only: no page answers a 500. The server reads on through the
    connection it holds open (voix.db.SQLite shares one for reads), so the anonymous home page
    still shows; a write answers the translated 503, readiness says so, once in the log."""
    var = tmp_path / "var"
    var.mkdir()
    database = var / "voix.sqlite3"
    env = _env(f"sqlite:///{database}", var)
    _migrate(env)
    with serve(env, unprivileged=True) as (url, log):
        assert httpx.get(url + "/", headers=FRENCH).status_code == 200
        files = list(var.iterdir())
        for path in files:
            path.chmod(0o444)
        var.chmod(0o555)
        try:
            with httpx.Client(base_url=url, headers=FRENCH, timeout=30) as browser:
                assert browser.get("/login").status_code == 200  # its CSRF cookie
                for _ in range(3):
                    assert browser.get("/").status_code == 200
                    attempt = browser.post(
                        "/login",
                        data={
                            "login": "someone@example.org",
                            "password": "x",
                            "_csrf_token": browser.cookies["csrftoken"],
                        },
                    )
                    assert_resting(attempt)
            assert httpx.get(url + "/health/ready").status_code == 503
            assert httpx.get(url + "/health/live").status_code == 200
            assert _output(log).count(UNAVAILABLE) == 1, _output(log)
        finally:
            var.chmod(0o755)
            for path in files:
                path.chmod(0o644)
        assert httpx.get(url + "/", headers=FRENCH).status_code == 200
