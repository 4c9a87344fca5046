"""docker-compose.yml is valid, and its start-up sequence works on this test's database.

There is no Docker engine here, so the sequence the compose file runs (`voix migrate`, then
`voix serve` in production mode, twice for two replicas) is replayed as real processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from tests.factories import add_proposal, add_table, run_voix
from tests.servers import free_port, replica, wait_ready
from voix.settings import PROJECT_ROOT

COMPOSE_ENV = {
    "POSTGRES_PASSWORD": "example",
    "VOIX_SECRET_KEY": "x" * 40,
    "VOIX_ALLOWED_HOSTS": "127.0.0.1",
    "VOIX_BASE_URL": "http://127.0.0.1:8000",
}


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    if legacy := shutil.which("docker-compose"):
        return [legacy]
    return None


def test_compose_file_is_accepted_by_docker_compose() -> None:
    command = compose_command()
    if command is None:
        pytest.skip(
            "NOTICE: neither `docker compose` nor `docker-compose` is installed; "
            "the compose file was not validated (.ci/run installs docker-compose)"
        )
    result = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "-q"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **COMPOSE_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unset = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "-q"],
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k not in COMPOSE_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert unset.returncode != 0, "the compose file must refuse to start without its secrets"


async def test_compose_start_up_sequence_with_two_replicas() -> None:
    env = {
        **os.environ,
        "VOIX_ENV": "production",
        "VOIX_SECRET_KEY": COMPOSE_ENV["VOIX_SECRET_KEY"],
        "VOIX_ALLOWED_HOSTS": "127.0.0.1",
    }
    migrate = run_voix("migrate", env=env)
    assert migrate.returncode == 0, migrate.stderr
    table = await add_table("flamants-iris", "avec-nous")
    await add_proposal(table, "Réparer les ascenseurs de la tour G")
    with replica(env) as first, replica(env) as second:
        for url in (first, second):
            assert httpx.get(f"{url}/health").json() == {"status": "ok", "database": "ok"}
            page = httpx.get(f"{url}/tables/flamants-iris")
            assert "tour G" in page.text
            assert "secure" in page.headers.get("set-cookie", "").lower()  # production cookies


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VOIX_SECRET_KEY"} | {
        "VOIX_ENV": "production"
    }
    result = run_voix("migrate", env=env)
    assert result.returncode != 0
    assert "VOIX_SECRET_KEY is required in production" in result.stderr


async def test_other_host_names_are_refused(client) -> None:
    response = await client.get("/health", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert (await client.get("/health")).status_code == 200


def test_host_names_are_compared_without_their_port() -> None:
    from voix.middleware import host_allowed, host_name

    allowed = ("voix.example", "*.quartiers.example", "[::1]")
    assert host_name("Voix.Example:8443") == "voix.example"
    assert host_name("[::1]:8000") == "[::1]"
    for good in ("voix.example:80", "table.quartiers.example", "[::1]:8000"):
        assert host_allowed(host_name(good), allowed), good
    for bad in ("evil.example", "voix.example.evil.example", "quartiers.example.evil", "[::2]"):
        assert not host_allowed(host_name(bad), allowed), bad


# Waiting for a server: on its readiness, however slow, with its output when it never comes.

SLOW_SERVER = """
import http.server, sys, time
ready_at = time.monotonic() + float(sys.argv[2])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if time.monotonic() > ready_at else 503)
        self.end_headers()
print("slow server starting", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def start(code: str, *args: str, log) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def test_the_wait_lasts_until_health_answers_200() -> None:
    with tempfile.TemporaryFile() as log:
        process, url = start(SLOW_SERVER, "1.5", log=log)
        try:
            began = time.monotonic()
            wait_ready(url, process, log, deadline_seconds=60)
            assert time.monotonic() - began >= 1.5  # 503s were not taken for readiness
            assert httpx.get(f"{url}/health").status_code == 200
        finally:
            process.kill()
            process.wait()


def test_a_server_that_never_gets_ready_fails_with_its_output() -> None:
    with tempfile.TemporaryFile() as log:
        process, url = start(SLOW_SERVER, "3600", log=log)
        try:
            with pytest.raises(AssertionError, match=r"not ready after 2 s") as failure:
                wait_ready(url, process, log, deadline_seconds=2)
            assert "slow server starting" in str(failure.value)
        finally:
            process.kill()
            process.wait()


def test_a_server_that_dies_fails_at_once_with_its_output() -> None:
    with tempfile.TemporaryFile() as log:
        process, url = start("import sys; print('boom: no database'); sys.exit(3)", log=log)
        began = time.monotonic()
        with pytest.raises(AssertionError, match=r"exited with code 3") as failure:
            wait_ready(url, process, log, deadline_seconds=60)
        assert "boom: no database" in str(failure.value)
        assert time.monotonic() - began < 30
