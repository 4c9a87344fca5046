"""uvicorn (uvloop + httptools) against Granian (ASGI, uvloop) serving the same app.

    .venv/bin/python bench/servers.py [--rounds 2] [--seconds 10] [--warm-up 2]

Issue 15: "uvloop/httptools or Granian — compare and keep the faster, under the same tests".
A fresh SQLite database with the demo (in a temporary directory), production settings, each
server with 2 workers (uvicorn on port 8831, Granian on 8832), each started and stopped in
turn, ROUNDS times, interleaved, so that both meet the same machine. For each: the time from
the spawn to the first 200 on /health; a wait until its processes are idle (the app's CPU
workers preload after start-up); then for each page wrk at 20 connections and 2 threads (a
warm-up, then SECONDS measured): requests per second, p50, p99, and the CPU time the server's
processes used per request (warm-up requests estimated at the measured rate), a figure a busy
machine disturbs less than requests per second. Then the time a SIGTERM takes to stop it. Granian is not a requirement: `.venv/bin/pip install granian` first.
Figures taken while other work runs on the machine are noisy: compare the two within a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Server, wrk  # bench/load.py

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("/", "/tables/flamants-iris")
WORKERS = 2
# A key for a throw-away database, never for a site.
SECRET_KEY = "voix-bench-servers-only-secret-key-for-a-throwaway-database"  # noqa: S105


def uvicorn(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "voix.asgi:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
        "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log", "--no-proxy-headers",
        "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip


def granian(port: int) -> list[str]:
    executable = shutil.which("granian", path=str(Path(sys.executable).parent))
    if executable is None:
        raise SystemExit("Granian is not installed: .venv/bin/pip install granian")
    return [
        executable, "--interface", "asgi", "--factory", "voix.asgi:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
        "--loop", "uvloop", "--http", "1", "--no-ws",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


SERVERS = {"uvicorn": (8831, uvicorn), "granian": (8832, granian)}


def environment(var_dir: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOIX_")}
    env.update(
        DATABASE_URL=f"sqlite:///{var_dir / 'voix.sqlite3'}",
        VOIX_ENV="production",
        VOIX_SECRET_KEY=SECRET_KEY,
        VOIX_ALLOWED_HOSTS="127.0.0.1,localhost",
        VOIX_BASE_URL=f"http://127.0.0.1:{port}",
        VOIX_VAR_DIR=str(var_dir),
        VOIX_LOG_FORMAT="text",
        PYTHONPATH=str(ROOT),
    )
    return env


def seed(var_dir: Path) -> None:
    env = environment(var_dir, 8831)
    for step in ("migrate", "demo"):
        subprocess.run(  # noqa: S603 — our own command line
            [sys.executable, "-m", "voix.cli", step],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )


def group_cpu_seconds(group: int) -> float:
    """User and system CPU time used so far by the processes of this process group (the
    server, its workers, the app's CPU pool), from /proc: less disturbed by a busy machine
    than requests per second. Linux only (0 elsewhere)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(group: int, quiet: float = 0.1, longest: float = 90.0) -> None:
    """Waits until the server's processes are idle (under `quiet` CPU seconds per second):
    the app's CPU workers preload WeasyPrint, folium and PyAV after start-up (warm_up), which
    would otherwise be counted in the first page's figures."""
    deadline = time.perf_counter() + longest
    used = group_cpu_seconds(group)
    while time.perf_counter() < deadline:
        time.sleep(1)
        now = group_cpu_seconds(group)
        if now - used < quiet:
            return
        used = now


def measure(name: str, var_dir: Path, seconds: float, warm_up: float) -> dict[str, object]:
    port, command = SERVERS[name]
    base = f"http://127.0.0.1:{port}"
    server = Server(name, command(port), environment(var_dir, port), var_dir / f"{name}.log", ROOT)
    try:
        ready = server.wait_ready(f"{base}/health")
        settle(server.process.pid)
        pages: dict[str, object] = {}
        for path in PAGES:
            response = httpx.get(base + path, timeout=30)
            if response.status_code != 200:
                raise SystemExit(f"{name}: {path} answered {response.status_code}")
            before = group_cpu_seconds(server.process.pid)
            load = wrk(base + path, {}, seconds, warm_up)
            # The warm-up's requests are not in `load`: measured apart, both in CPU time.
            used = group_cpu_seconds(server.process.pid) - before
            pages[path] = (load, used / (load.requests * (1 + warm_up / seconds)) * 1000)
        stopping = time.perf_counter()
    finally:
        if "stopping" not in locals():
            stopping = time.perf_counter()
        server.stop()
    return {"ready": ready, "stop": time.perf_counter() - stopping, "pages": pages}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=2)
    options.add_argument("--seconds", type=float, default=10.0)
    options.add_argument("--warm-up", type=float, default=2.0)
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="voix-servers-") as directory:
        var_dir = Path(directory)
        seed(var_dir)
        results: dict[str, list[dict[str, object]]] = {name: [] for name in SERVERS}
        for round_ in range(1, args.rounds + 1):
            for name in SERVERS:
                result = measure(name, var_dir, args.seconds, args.warm_up)
                results[name].append(result)
                print(f"round {round_} {name:8} ready {result['ready']:.2f} s, "
                      f"stopped {result['stop']:.2f} s after SIGTERM", flush=True)  # fmt: skip
                for path, (load, cpu) in result["pages"].items():  # type: ignore[attr-defined]
                    print(
                        f"    {path:24} {load.requests_per_second:8.1f} req/s  "
                        f"{cpu:6.2f} ms CPU/request  "
                        f"p50 {load.p50_ms:7.1f} ms  p99 {load.p99_ms:7.1f} ms  "
                        f"non-2xx {load.non_2xx}  errors {load.socket_errors}",
                        flush=True,
                    )
        print(f"\nmedian over {args.rounds} rounds, 2 workers each, wrk 20 connections:")
        for path in PAGES:
            rates, cpu = {}, {}
            for name in SERVERS:
                runs = [r["pages"][path] for r in results[name]]  # type: ignore[index]
                rates[name] = statistics.median(load.requests_per_second for load, _ in runs)
                cpu[name] = statistics.median(used for _, used in runs)
            print(
                f"  {path:24} uvicorn {rates['uvicorn']:8.1f} req/s {cpu['uvicorn']:6.2f} ms CPU"
                f"   granian {rates['granian']:8.1f} req/s {cpu['granian']:6.2f} ms CPU"
                f"   granian/uvicorn {rates['granian'] / rates['uvicorn']:.2f} req/s, "
                f"{cpu['granian'] / cpu['uvicorn']:.2f} CPU"
            )


if __name__ == "__main__":
    main()
