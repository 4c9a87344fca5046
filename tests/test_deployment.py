"""docker-compose.yml is valid, and its start-up sequence works on this test's database.

There is no Docker engine here, so the sequence the compose file runs (`voix migrate`, then
`voix serve` in production mode, twice for two replicas, behind Caddy with the project's own
deploy/Caddyfile) is replayed as real processes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

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


def test_the_compose_file_runs_two_replicas_behind_caddy_as_a_non_root_user() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    app, proxy = services["app"], services["proxy"]
    assert app["deploy"]["replicas"] == 2
    assert "ports" not in app, "only the proxy is reachable from outside"
    assert proxy["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    # The app trusts X-Forwarded-For from the proxy's fixed address alone, on a network the
    # database is not on.
    proxy_address = ipaddress.ip_address(proxy["networks"]["front"]["ipv4_address"])
    front = ipaddress.ip_network(compose["networks"]["front"]["ipam"]["config"][0]["subnet"])
    assert proxy_address in front
    trusted = app["environment"]["VOIX_TRUSTED_PROXIES"]
    assert [ipaddress.ip_network(item) for item in trusted.split(",")] == [
        ipaddress.ip_network(proxy_address)
    ]
    assert set(app["networks"]) == {"default", "front"}
    assert "networks" not in services["db"]
    assert "healthcheck" in app
    # The image's process runs as `voix`, not root.
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


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


# Two replicas behind the project's Caddyfile, as the compose file runs them.


@contextmanager
def logged_replica(env: dict[str, str], log_path: Path) -> Iterator[int]:
    """`voix serve` on a free port, its output in `log_path`; yields the port once ready."""
    port = free_port()
    with log_path.open("w+b") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voix.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", process, log)
            yield port
        finally:
            stop(process)


@contextmanager
def caddy(upstreams: list[int], home: Path) -> Iterator[str]:
    """Caddy with deploy/Caddyfile, in plain HTTP on a free port, in front of `upstreams`."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "VOIX_DOMAIN": f":{port}",
        "VOIX_UPSTREAMS": "to " + " ".join(f"127.0.0.1:{p}" for p in upstreams),
        "VOIX_CADDY_ADMIN": "off",  # two test runs at once would both want :2019
    }
    with (home / "caddy.log").open("w+b") as log:
        process = subprocess.Popen(
            [
                "caddy",
                "run",
                "--config",
                str(PROJECT_ROOT / "deploy" / "Caddyfile"),
                "--adapter",
                "caddyfile",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process, log, deadline_seconds=60)
            yield url
        finally:
            stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


async def test_two_replicas_answer_through_caddy_which_forwards_the_clients_address() -> None:
    if shutil.which("caddy") is None:
        pytest.skip("NOTICE: Caddy is not installed (.ci/run installs it); the proxy was not run")
    env = {
        **os.environ,
        "VOIX_ENV": "production",
        "VOIX_SECRET_KEY": COMPOSE_ENV["VOIX_SECRET_KEY"],
        "VOIX_ALLOWED_HOSTS": "127.0.0.1",
        "VOIX_TRUSTED_PROXIES": "127.0.0.1",  # where Caddy connects from, here
    }
    migrate = run_voix("migrate", env=env)
    assert migrate.returncode == 0, migrate.stderr
    await add_table("flamants-iris", "avec-nous")
    paths = [f"/through-the-proxy-{n}" for n in range(8)]
    lines = requests_through_caddy(env, paths)
    assert all(lines), f"a replica answered nothing: {[len(found) for found in lines]}"
    answered = [line for found in lines for line in found]
    for path in paths:  # each request answered once, by one replica
        assert len([line for line in answered if re.search(rf"{path}\b", line)]) == 1, path
    for line in answered:
        assert "127.0.0.2" in line, line
        assert "203.0.113.66" not in line, line


def requests_through_caddy(env: dict[str, str], paths: list[str]) -> list[list[str]]:
    """Two replicas behind Caddy; the table's page and `paths` asked through it. Returns, for
    each replica, the lines of its output that name one of `paths`."""
    with tempfile.TemporaryDirectory(prefix="voix-proxy-") as folder:
        home = Path(folder)
        logs = [home / "first.log", home / "second.log"]
        with (
            logged_replica(env, logs[0]) as first,
            logged_replica(env, logs[1]) as second,
            caddy([first, second], home) as url,
            # The resident's machine: an address of its own, which neither the proxy nor a
            # replica has, so a replica can only learn it from X-Forwarded-For.
            httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as client,
        ):
            page = client.get(f"{url}/tables/flamants-iris")
            assert page.status_code == 200
            assert "Flamants Iris" in page.text
            for path in paths:
                # A client's own X-Forwarded-For is a lie the proxy drops.
                answer = client.get(f"{url}{path}", headers={"X-Forwarded-For": "203.0.113.66"})
                assert answer.status_code == 404  # the app's own page: a replica answered
            time.sleep(0.5)  # the access lines are written after the answers
            written = [log.read_text(errors="replace") for log in logs]
    return [
        [line for line in text.splitlines() if any(path in line for path in paths)]
        for text in written
    ]
