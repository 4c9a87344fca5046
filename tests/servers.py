"""Real `voix serve` processes for the tests that need one (replicas, live streams, browser).

A server is ready when /health answers 200, however long a loaded machine takes to get there;
the wait ends early, with the server's own output, if the process dies or the deadline passes.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from voix.settings import PROJECT_ROOT

READY_DEADLINE_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _output(log: IO[bytes]) -> str:
    # pread leaves the offset the server writes at untouched.
    data = os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0)
    return data.decode(errors="replace")[-20_000:]


def wait_ready(
    url: str,
    process: subprocess.Popen[str],
    log: IO[bytes],
    deadline_seconds: float = READY_DEADLINE_SECONDS,
) -> None:
    """Polls {url}/health until it answers 200; AssertionError with the server's output if the
    process exits first or the deadline passes."""
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < deadline_seconds:
        if process.poll() is not None:
            raise AssertionError(
                f"the server at {url} exited with code {process.returncode} before it was "
                f"ready; its output:\n{_output(log)}"
            )
        try:
            response = httpx.get(f"{url}/health", timeout=5)
        except httpx.TransportError as error:
            last = repr(error)
        else:
            if response.status_code == 200:
                return
            last = f"/health answered {response.status_code}: {response.text[:200]}"
        time.sleep(0.25)
    raise AssertionError(
        f"the server at {url} was not ready after {deadline_seconds:.0f} s ({last}); "
        f"its output:\n{_output(log)}"
    )


@contextmanager
def replica(env: dict[str, str]) -> Iterator[str]:
    """`voix serve` on a free port with this environment; yields its base URL once ready."""
    with serving(env) as (url, _):
        yield url


@contextmanager
def serving(
    env: dict[str, str], port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """As `replica`, with the process too (for the tests that signal it), on this port if
    given (a server started again where its pages were)."""
    port = port or free_port()
    # Output to a file, not a pipe nobody reads: a full pipe would block the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voix.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process, log)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


class OwnPostgres:
    """A PostgreSQL cluster of a test's own, in a temporary directory, that the test may stop,
    start and restart (the shared test server must never be). `url` is its `postgres` database."""

    def __init__(self, bin_dir: Path, root: Path, as_user: list[str]) -> None:
        self.bin, self.root, self.as_user = bin_dir, root, as_user
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def pg_ctl(self, *args: str) -> None:
        # Its output to a file: to a pipe, the server would hold pg_ctl's output open.
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), *args)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off"
        )
        self.pg_ctl("-o", options, "-w", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "restart")


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started OwnPostgres, removed afterwards. Skipped with its reason where PostgreSQL's
    server binaries are missing (a user's machine), required in CI."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="voix-own-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = OwnPostgres(Path(found[-1]).parent, root, as_user)
    try:
        cluster.run(
            "initdb", "--auth=trust", "--no-sync", "-U", "postgres", "-D", str(cluster.data)
        )
        cluster.start()
        try:
            yield cluster
        finally:
            subprocess.run(
                [*as_user, str(cluster.bin / "pg_ctl"), "-D", str(cluster.data), "-m",
                 "immediate", "stop"],
                capture_output=True,
                check=False,
            )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
