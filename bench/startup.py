"""How long `voix serve` takes to answer /health, and which imports the start-up pays for.

    .venv/bin/python bench/startup.py [--runs 5] [--port 8831] [--database-url URL]

Migrates a fresh SQLite database in a temporary directory (or uses DATABASE_URL / the given
URL, migrated already), then starts `voix serve` RUNS times, each time measuring from the
spawn to the first 200 on /health (polled every 10 ms), and prints the median; then the ten
imports of `import voix.app` with the largest cumulative time (python -X importtime).
Development settings, as `make run`: the CPU workers are started at start-up (warm_up). The
project's bytecode is compiled first, as `make run` and the image do: where Python may not write
it (PYTHONDONTWRITEBYTECODE, code owned by another user) every start would compile the project.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VOIX = [sys.executable, "-m", "voix.cli"]
DEADLINE_SECONDS = 60.0


def _environment(var_dir: Path, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VOIX_ENV="development",
        VOIX_VAR_DIR=str(var_dir),
        VOIX_KEY_DIR=str(var_dir / "keys"),
        VOIX_LOG_FORMAT="text",
    )
    env.pop("VOIX_SECRET_KEY", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    return env


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_health(env: dict[str, str], port: int) -> tuple[float, float]:
    """Seconds from spawning `voix serve` to its first 200 on /health, and the CPU seconds the
    server's process used until then (less sensitive than the first to a busy machine)."""
    command = [*VOIX, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 — our own command line
            command, cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            with httpx.Client(timeout=5) as client:
                last = "no answer"
                while time.perf_counter() - started < DEADLINE_SECONDS:
                    if process.poll() is not None:
                        log.seek(0)
                        raise SystemExit(f"voix serve exited:\n{log.read().decode()[-4000:]}")
                    try:
                        response = client.get(f"http://127.0.0.1:{port}/health")
                    except httpx.TransportError as error:
                        last = repr(error)
                    else:
                        if response.status_code == 200:
                            return time.perf_counter() - started, _cpu_seconds(process.pid)
                        last = f"{response.status_code} {response.text[:200]}"
                    time.sleep(0.01)
            log.seek(0)
            raise SystemExit(
                f"no 200 on /health after {DEADLINE_SECONDS:.0f} s ({last}):\n"
                + log.read().decode()[-4000:]
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def top_imports(env: dict[str, str], count: int = 10) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the `count` slowest imports of voix.app."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import voix.app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), int(own), name.strip()))
    return sorted(rows, reverse=True)[:count]


def packages() -> list[str]:
    """The project's packages, as pyproject.toml names them for setuptools."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = project["tool"]["setuptools"]["packages"]["find"]["include"]
    return [name.rstrip("*") for name in found]


def compile_bytecode(python: str = sys.executable) -> None:
    """Compiles the project's bytecode, as `make run` and the image do before serving."""
    subprocess.run(  # noqa: S603 — our own command line
        [python, "-m", "compileall", "-q", *packages()], cwd=ROOT, check=True
    )


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=5)
    options.add_argument("--port", type=int, default=8831)
    options.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="voix-startup-") as directory:
        env = _environment(Path(directory), args.database_url)
        compile_bytecode()
        subprocess.run(  # noqa: S603 — our own command line
            [*VOIX, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        runs = [time_to_health(env, args.port) for _ in range(args.runs)]
        times, cpu = [wall for wall, _ in runs], [used for _, used in runs]
        print(
            f"start-up to /health: median {statistics.median(times):.2f} s over {args.runs} runs "
            f"({', '.join(f'{t:.2f}' for t in times)}), target < 1.5 s; "
            f"server CPU until then: median {statistics.median(cpu):.2f} s"
        )
        print("slowest imports of voix.app (cumulative, self):")
        for cumulative, own, name in top_imports(env):
            print(f"  {cumulative / 1000:8.1f} ms {own / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
