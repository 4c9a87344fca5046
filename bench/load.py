"""Servers and load for the benchmarks: start a server in its own process group, wait for it,
stop it (and every process it started), and load a URL with wrk.

Used by bench/run.py; standard library only, so that it runs outside the app's environment.
wrk is Debian's package (`apt-get install wrk`); its `--latency` output gives the percentiles.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

WRK_MISSING = "wrk is not installed: sudo apt-get install wrk  (Debian/Ubuntu)"
CONNECTIONS = 20
THREADS = 2


def wrk_path() -> str:
    """The wrk executable, or SystemExit with the command that installs it."""
    found = shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
    if found is None:
        raise SystemExit(WRK_MISSING)
    return found


class Server:
    """A server process in a process group of its own: stopping it stops its workers too."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log.open("ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 — our own command line
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, for stop()
        )

    def wait_ready(self, url: str, timeout: float = 60.0, interval: float = 0.01) -> float:
        """Seconds from the spawn to the first 200 at `url`; RuntimeError if it dies or times out."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — loopback
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(interval)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {url} within {timeout:.0f} s; see {self.log}"
        )

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of the server's group (Linux /proc)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            # After the command's ")": state, ppid, pgrp, …, utime (12th), stime (13th).
            if int(fields[2]) == self.process.pid:
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, timeout: float = 300.0, window: float = 0.5) -> float:
        """Waits until the server stops working (a load's last requests still run after wrk
        leaves: they would be counted against the next page); returns the seconds waited."""
        started = time.perf_counter()
        before = self.cpu_seconds()
        while time.perf_counter() - started < timeout:
            time.sleep(window)
            now = self.cpu_seconds()
            if now - before < window * 0.05:  # under 5 % of a core
                break
            before = now
        return time.perf_counter() - started

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after 10 s."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Workers (uvicorn's, the app's CPU pool) may outlive their parent for a moment.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log_file.close()


@dataclass
class Load:
    requests_per_second: float
    p99_ms: float
    p50_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    # The share of the machine's CPU time the hypervisor gave to others while wrk measured
    # (/proc/stat's steal; None where the kernel does not count it).
    steal_pct: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "rps": round(self.requests_per_second, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "steal_pct": None if self.steal_pct is None else round(self.steal_pct, 1),
        }


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) clock ticks of every CPU since boot, from /proc/stat (Linux); None
    elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if fields[0] != "cpu" or len(fields) < 9:
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user, nice]
    ticks = [int(n) for n in fields[1:9]]
    return ticks[7], sum(ticks)


def steal_between(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The percentage of CPU time stolen between two cpu_ticks() readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100.0 * (after[0] - before[0]) / (after[1] - before[1])


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    found = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", value.strip())
    if not found:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(found[1]) * _UNITS_MS[found[2]]


def parse_wrk(output: str) -> Load:
    """Requests/s, p50 and p99, non-2xx and socket errors from `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    total = re.search(r"([0-9]+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", output)
    errors = re.search(
        r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", output
    )
    if not (rps and p99 and p50 and total):
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return Load(
        requests_per_second=float(rps[1]),
        p99_ms=_ms(p99[1]),
        p50_ms=_ms(p50[1]),
        requests=int(total[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def wrk(
    url: str,
    headers: Mapping[str, str],
    seconds: float,
    warm_up: float,
    *,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
) -> Load:
    """Loads `url` for `warm_up` seconds (discarded), then `seconds` measured."""
    base = [wrk_path(), f"-t{threads}", f"-c{connections}", "--timeout", "10s", "--latency"]
    for name, value in headers.items():
        base += ["-H", f"{name}: {value}"]
    if warm_up > 0:
        subprocess.run(  # noqa: S603
            [*base, f"-d{max(1, round(warm_up))}s", url], capture_output=True, check=True
        )
    before = cpu_ticks()
    done = subprocess.run(  # noqa: S603
        [*base, f"-d{max(1, round(seconds))}s", url], capture_output=True, check=True, text=True
    )
    load = parse_wrk(done.stdout)
    load.steal_pct = steal_between(before, cpu_ticks())
    return load
