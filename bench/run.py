"""Issue 15's benchmark in one command: the app and its floor side by side, with ratios.

    make bench                                   # = .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --rows 10000,100000 --db sqlite,postgres [--quick]
        [--runs 2] [--skip-casting] [--keep]

For each database (SQLite, PostgreSQL) and each size N:

1. A fresh database (SQLite: var/bench/voix-N.sqlite3; PostgreSQL: `voix_bench` on
   127.0.0.1:5432, user postgres, created and dropped here, skipped with a notice when
   unreachable) is migrated, seeded with the demo and brought to N proposals on the
   Flamants table, then ANALYZEd (bench/inproc.py seed).
2. The app is served as in production: uvicorn, 2 workers, uvloop, httptools, on port 8801,
   VOIX_ENV=production with a bench secret key, allowed hosts 127.0.0.1 and localhost, base
   URL http://127.0.0.1:8801 (production needs no TLS of the app itself: the proxy has it; the
   session cookie is only marked Secure, and wrk sends it as a header). Log level warning.
3. Each page's body is fetched once (anonymous, and signed in as a demo resident), and the
   floor (bench/floor.py: bare Litestar, same server settings, port 8802) serves a page of the
   same size rendered by Jinja from rows in memory (--floor bytes: the captured bytes as is).
4. wrk loads each page of the app and the floor's copy in turn: 20 connections, 2 threads, a
   warm-up (2 s) of each, then three rounds of 4 s measured on each (--quick: 2 s), the first
   to go alternating. Requests/s, p50 and p99 of the round whose ratio is the median (the
   rounds' ratios are printed too): a page's row once rested on one window of 4 s, and one
   window in thirty-odd halved for no reason found in the app (SQLite, 2026-12-03).
5. Queries per page through the ASGI app in process (bench/inproc.py queries; the warm count:
   a second request), the search's SQL at N rows (bench/inproc.py search), the wire sizes of
   the list page and the map (identity, gzip, br), the map points' time once warm (sequential
   requests), and the start-up of `voix serve` (1 worker) to the first 200 on /health.
6. bench/casting.py (ballots through HTTP against raw asyncpg), on PostgreSQL, unless
   --skip-casting.

Prints a table per database and size: target | app | floor | ratio | p99 | queries | pass/fail,
and writes everything to var/bench/results-<time>.json. --runs 2 measures twice in a row on
the same seeded databases (the issue reports two runs). Servers and their workers are
stopped on exit (process groups). Figures taken while other work runs on the machine are
noisy: compare runs made in the same conditions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Server, wrk, wrk_path  # bench/load.py
from servers import settle  # bench/servers.py
from startup import compile_bytecode  # bench/startup.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
PYTHON = sys.executable
APP_PORT = 8801
FLOOR_PORT = 8802
CASTING_PORT = 8821  # bench/casting.py's own
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "voix_bench"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
# A key for a throw-away database, never for a site.
SECRET_KEY = "voix-bench-only-secret-key-for-a-throwaway-database-0123456789"  # noqa: S105
TABLE_SLUG = "flamants-iris"
TABLE = f"/tables/{TABLE_SLUG}"
DEMO_RESIDENT = "samira"  # a resident: no second step at sign-in
DEMO_PASSWORD = "quartiers-nord-2026"  # noqa: S105 — the demo's published password

# Issue 15's targets.
RATIO_MIN = 0.25
P99_MAX_MS = 150.0
QUERIES_MAX = 4
SEARCH_MAX_MS = 20.0
STARTUP_MAX_S = 1.5
MAP_WIRE_MAX = 250 * 1024
MAP_SERVER_MAX_MS = 50.0
CASTING_RATIO_MIN = 0.50
LOAD_ROUNDS = 3  # the app and the floor in turn, for each page


def targets(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The pages measured: name, path, headers, and kind ("page": held to the issue's targets;
    "api", "map": measured and shown, their own targets apart)."""
    listed = [
        "",
        "?theme=housing",
        "?status=adopted",
        "?q=ascenseur",
        "?q=jardin&theme=transport&status=adopted",
        "?sort=supports",
        "?q=lumi%C3%A8re&sort=supports&page=5",
        "?page=50",
    ]
    found = [{"name": "home /", "path": "/", "headers": {}, "kind": "page"}]
    found += [
        {"name": f"list {q or '(all)'}", "path": TABLE + q, "headers": {}, "kind": "page"}
        for q in listed
    ]
    found.append(
        {
            "name": "list htmx fragment",
            "path": TABLE,
            "headers": {"HX-Request": "true", "HX-Target": "proposals"},
            "kind": "page",
        }
    )
    found.append(
        {
            "name": "proposal page",
            "path": f"/proposals/{info['commented_proposal']}",
            "headers": {},
            "kind": "page",
        }
    )
    found.append(
        {
            "name": "api proposals",
            "path": "/api/v1/tables/flamants-iris/proposals",
            "headers": {},
            "kind": "api",
        }
    )
    found.append({"name": "map page", "path": f"{TABLE}/map", "headers": {}, "kind": "map"})
    found += [
        {"name": f"map points {path}", "path": path, "headers": {}, "kind": "map"}
        for path in info.get("points_paths", [])
    ]
    return found


def environment(database_url: str, port: int = APP_PORT) -> dict[str, str]:
    """The environment of the app served as in production on `port`, on that database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIX_")}
    env.update(
        DATABASE_URL=database_url,
        PICCOLO_CONF="voix.piccolo_conf",
        VOIX_ENV="production",
        VOIX_SECRET_KEY=SECRET_KEY,
        VOIX_ALLOWED_HOSTS="127.0.0.1,localhost",
        VOIX_BASE_URL=f"http://127.0.0.1:{port}",
        VOIX_VAR_DIR=str(OUT / "var"),
        VOIX_LOG_FORMAT="text",
        PYTHONPATH=str(ROOT),
    )
    return env


def inproc(step: str, env: dict[str, str], *args: str) -> Any:
    """Runs a step of bench/inproc.py in its own process; returns its JSON result."""
    out = OUT / f"inproc-{step}.json"
    out.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603
        [PYTHON, str(ROOT / "bench" / "inproc.py"), step, "--out", str(out), *args],
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(out.read_text())


async def _postgres(create: bool) -> None:
    connection = await asyncpg.connect(PG_ADMIN, timeout=3)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        if create:
            await connection.execute(f"CREATE DATABASE {PG_DATABASE}")
    finally:
        await connection.close()


def fresh_database(db: str, rows: int) -> str | None:
    """The URL of a new, empty database; None (and a notice) when PostgreSQL is unreachable."""
    if db == "sqlite":
        path = OUT / f"voix-{rows}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    try:
        asyncio.run(_postgres(create=True))
    except Exception as unreachable:  # refused, timed out, authentication: all say skip
        print(f"PostgreSQL at 127.0.0.1:5432 unreachable ({unreachable}): skipped.", flush=True)
        return None
    return PG_URL


@contextmanager
def serving(name: str, command: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    (OUT / f"{name}.log").unlink(missing_ok=True)  # each server's log: its last run only
    server = Server(name, command, env, OUT / f"{name}.log", ROOT)
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/health")
        if name == "app":
            settle(server.process.pid)  # the CPU workers start, then preload, after /health
        yield server
    finally:
        server.stop()


def uvicorn(app: str, port: int, workers: int, *extra: str) -> list[str]:
    return [
        PYTHON, "-m", "uvicorn", app, *extra,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log", "--no-proxy-headers",
        "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip


def _cookies(response: httpx.Response, jar: dict[str, str]) -> None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0]
        if value and "max-age=0" not in header.lower():
            jar[name.strip()] = value
        else:
            jar.pop(name.strip(), None)


def sign_in(base: str) -> str:
    """A demo resident's Cookie header, signed in through the login form over HTTP."""
    jar: dict[str, str] = {}
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        form = client.get("/login")
        _cookies(form, jar)
        found = re.search(r'name="(_csrf_token)"[^>]*value="([^"]+)"', form.text)
        if not found:
            raise RuntimeError("no CSRF field on /login")
        done = client.post(
            "/login",
            data={"login": DEMO_RESIDENT, "password": DEMO_PASSWORD, found[1]: found[2]},
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())},
        )
        if done.status_code not in (302, 303):
            raise RuntimeError(f"signing in answered {done.status_code}")
        _cookies(done, jar)
        # The page signing in leads to, as a browser shows it: it shows the flash message
        # ("you are signed in") and clears its cookie. Kept, every measured page would show
        # the message again and clear it again, which no browser asks for.
        landed = client.get(
            done.headers["location"],
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())},
        )
        if landed.status_code != 200:
            raise RuntimeError(f"the page after signing in answered {landed.status_code}")
        _cookies(landed, jar)
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def wire_sizes(client: httpx.Client, path: str) -> dict[str, Any]:
    """Bytes on the wire for each Accept-Encoding, and the encoding the app chose."""
    sizes: dict[str, Any] = {}
    for encoding in ("identity", "gzip", "br"):
        with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as response:
            raw = b"".join(response.iter_raw())
            sizes[encoding] = {
                "status": response.status_code,
                "bytes": len(raw),
                "content_encoding": response.headers.get("content-encoding", ""),
                "etag": response.headers.get("etag", ""),
            }
    return sizes


def sequential_ms(client: httpx.Client, path: str, reps: int) -> float:
    """Median time of one request at a time, once warm (two requests first)."""
    times = []
    for n in range(reps + 2):
        start = time.perf_counter()
        client.get(path, headers={"Accept-Encoding": "br"}).read()
        if n >= 2:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def startup(env: dict[str, str], reps: int) -> list[float]:
    """Seconds from spawning `voix serve` (1 worker) to the first 200 on /health, the project's
    bytecode compiled first as `make run` and the image do (bench/startup.py)."""
    compile_bytecode(PYTHON)
    seconds = []
    for _ in range(reps):
        server = Server(
            "startup",
            [str(ROOT / ".venv" / "bin" / "voix"), "serve", "--port", str(APP_PORT)],
            env,
            OUT / "startup.log",
            ROOT,
        )
        try:
            seconds.append(server.wait_ready(f"http://127.0.0.1:{APP_PORT}/health", interval=0.01))
        finally:
            server.stop()
    return seconds


def casting(env: dict[str, str], quick: bool) -> dict[str, Any]:
    script = ROOT / "bench" / "casting.py"
    if not script.exists():
        return {"skipped": "bench/casting.py not there"}
    done = subprocess.run(  # noqa: S603
        [PYTHON, str(script), "2000" if quick else "3000", f"--port={CASTING_PORT}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    result: dict[str, Any] = {"output": done.stdout.strip(), "returncode": done.returncode}
    if done.returncode:
        result["error"] = done.stderr.strip()[-2000:]
    # The run's figures: those of its median round, printed last.
    median = done.stdout.rpartition("the median round")[2]
    app = re.search(r"app:\s+([0-9.]+) ballots/s.*?p99\s+([0-9.]+) ms", median)
    floor = re.search(r"floor:\s+([0-9.]+) ballots/s.*?p99\s+([0-9.]+) ms", median)
    if app and floor:
        result.update(
            app_rate=float(app[1]),
            app_p99_ms=float(app[2]),
            floor_rate=float(floor[1]),
            # From the rates, not the printed ratio: 49.96 % prints as 50.0 %.
            ratio=float(app[1]) / float(floor[1]),
            app_failures=(re.search(r"app:.*?failures (.+?)  server", median) or ["", "?"])[1],
            rounds=re.findall(r"round \d+: ([0-9.]+)%", done.stdout),
        )
    return result


def paired_load(
    app: tuple[Any, str],
    floor: tuple[Any, str],
    headers: dict[str, str],
    timing: tuple[float, float],
    rounds: int,
) -> tuple[Any, Any, list[dict[str, Any]], tuple[float, float]]:
    """The app's page and the floor's copy loaded in turn, `rounds` times, the first to go
    alternating (a warm-up of each first). Returns the loads of the round whose ratio is the
    median, every round's figures, and the seconds the servers took to go idle before the
    first load and the longest the app took after one of its own."""
    (app_server, app_url), (floor_server, floor_url) = app, floor
    seconds, warm_up = timing
    loads: list[tuple[Any, Any]] = []
    after: list[float] = []

    def load_app(first: float) -> Any:
        done = wrk(app_url, headers, seconds, first)
        after.append(app_server.wait_idle())
        return done

    # Each load starts on idle servers: requests still running from the last load (slow pages
    # outlive wrk) would be counted against this one.
    before = app_server.wait_idle() + floor_server.wait_idle()
    for n in range(rounds):
        first = warm_up if n == 0 else 0.0
        if n % 2:
            floor_load = wrk(floor_url, headers, seconds, first)
            floor_server.wait_idle()
            app_load = load_app(first)
        else:
            app_load = load_app(first)
            floor_load = wrk(floor_url, headers, seconds, first)
            floor_server.wait_idle()
        loads.append((app_load, floor_load))
    ratios = [a.requests_per_second / (f.requests_per_second or 1) for a, f in loads]
    median = sorted(range(rounds), key=lambda n: ratios[n])[(rounds - 1) // 2]
    figures = [
        {"app": a.as_dict(), "floor": f.as_dict(), "ratio": round(r, 4)}
        for (a, f), r in zip(loads, ratios, strict=True)
    ]
    return *loads[median], figures, (before, max(after))


def measure(db: str, env: dict[str, str], info: dict[str, Any], args: Any) -> dict[str, Any]:
    """One run on a seeded database: load, queries, search, wire sizes, start-up."""
    seconds, warm_up = (2.0, 2.0) if args.quick else (4.0, 2.0)
    pages = targets(info)
    base = f"http://127.0.0.1:{APP_PORT}"
    result: dict[str, Any] = {
        "load": [],
        "wire": {},
        "map_ms": {},
        "load_average_before": [round(n, 1) for n in os.getloadavg()],
    }
    app = uvicorn("voix.asgi:create_app", APP_PORT, 2, "--factory")
    with serving("app", app, env, APP_PORT) as app_server:
        cookie = sign_in(base)
        bodies = []
        with httpx.Client(base_url=base, timeout=60) as client:
            for page in pages:
                for who in ("anonymous", "signed_in"):
                    headers = {**page["headers"], "Accept-Encoding": "identity"}
                    if who == "signed_in":
                        headers["Cookie"] = cookie
                    response = client.get(page["path"], headers=headers)
                    bodies.append(
                        {
                            "page": page,
                            "who": who,
                            "status": response.status_code,
                            "body_b64": base64.b64encode(response.content).decode(),
                            "bytes": len(response.content),
                            "content_type": response.headers.get("content-type", "text/html"),
                        }
                    )
            for page in pages:
                if page["kind"] == "map" or page["name"] == "list (all)":
                    result["wire"][page["name"]] = wire_sizes(client, page["path"])
                if page["kind"] == "map":
                    result["map_ms"][page["name"]] = round(
                        sequential_ms(client, page["path"], 5 if args.quick else 10), 2
                    )
        floor_pages = OUT / "floor-pages.json"
        floor_pages.write_text(json.dumps(bodies))
        floor_env = {**env, "BENCH_FLOOR_PAGES": str(floor_pages)}
        floor = uvicorn("floor:app", FLOOR_PORT, 2, "--app-dir", str(ROOT / "bench"))
        with serving("floor", floor, floor_env, FLOOR_PORT) as floor_server:
            for number, captured in enumerate(bodies):
                page, who = captured["page"], captured["who"]
                headers = dict(page["headers"])
                if who == "signed_in":
                    headers["Cookie"] = cookie
                floor_path = f"/bytes/{number}" if args.floor == "bytes" else f"/{number}"
                floor_url = f"http://127.0.0.1:{FLOOR_PORT}{floor_path}"
                app_load, floor_load, rounds, (waited, waited_after) = paired_load(
                    (app_server, base + page["path"]),
                    (floor_server, floor_url),
                    headers,
                    (seconds, warm_up),
                    LOAD_ROUNDS if page["kind"] == "page" else 1,
                )
                row = {
                    "name": page["name"],
                    "kind": page["kind"],
                    "who": who,
                    "status": captured["status"],
                    "bytes": captured["bytes"],
                    "app": app_load.as_dict(),
                    "floor": floor_load.as_dict(),
                    "rounds": rounds,
                    # Seconds the servers took to go idle before this load, and the app after
                    # it: long waits are requests that outlived wrk (the app kept working).
                    "idle_wait_s": [round(waited, 1), round(waited_after, 1)],
                }
                result["load"].append(row)
                print(f"  {line(row)}", flush=True)
    query_targets = OUT / "query-targets.json"
    query_targets.write_text(json.dumps(pages))
    result["queries"] = inproc("queries", env, "--targets", str(query_targets))
    result["search"] = inproc("search", env, "--reps", "5" if args.quick else "20")
    result["startup_s"] = [round(s, 3) for s in startup(env, 3 if args.quick else 5)]
    if db == "postgres" and not args.skip_casting:
        result["casting"] = casting(env, args.quick)
    result["load_average_after"] = [round(n, 1) for n in os.getloadavg()]
    return result


def _verdict(failures: list[str]) -> str:
    return "pass" if not failures else "FAIL " + ",".join(failures)


def line(row: dict[str, Any], queries: int | None = None) -> str:
    app, floor = row["app"], row["floor"]
    ratio = app["rps"] / floor["rps"] if floor["rps"] else 0.0
    failures = []
    if row["kind"] == "page":
        if ratio < RATIO_MIN:
            failures.append("ratio")
        if app["p99_ms"] >= P99_MAX_MS:
            failures.append("p99")
        if queries is not None and queries > QUERIES_MAX:
            failures.append("queries")
    if row["status"] != 200 or app["non_2xx"] or app["socket_errors"] or not app["requests"]:
        failures.append(
            f"status {row['status']}: {app['requests']} answers, {app['non_2xx']} not 2xx, "
            f"{app['socket_errors']} socket errors"
        )
    verdict = _verdict(failures) if row["kind"] == "page" or failures else "(info)"
    if (busy := row.get("idle_wait_s", [0, 0])[1]) > 5:
        verdict += f" [app busy {busy:.0f} s after wrk]"
    if len(row.get("rounds", [])) > 1:
        verdict += "  rounds " + " ".join(f"{r['ratio']:.0%}" for r in row["rounds"])
        # Each round's p99, and the CPU time the hypervisor took for other guests while the
        # app was loaded (/proc/stat's steal): a slow round on a busy host shows here.
        verdict += " p99 " + " ".join(f"{r['app']['p99_ms']:.0f}" for r in row["rounds"])
        steal = [r["app"].get("steal_pct") for r in row["rounds"]]
        if all(s is not None for s in steal):
            verdict += " steal " + " ".join(f"{s:.1f}%" for s in steal)
    return (
        f"{row['name'][:44]:<44} {row['who'][:6]:<6} {app['rps']:>8.1f} {floor['rps']:>8.1f} "
        f"{ratio:>6.1%} {app['p99_ms']:>8.1f} {floor['p99_ms']:>7.1f} "
        f"{'' if queries is None else queries:>4} {row['bytes'] / 1024:>7.1f}  {verdict}"
    )


def report(db: str, rows: int, run: int, result: dict[str, Any]) -> str:
    counts = {(q["name"], q["who"]): q["warm"] for q in result["queries"]}
    out = [
        f"\n== {db}, {rows:,} proposals, run {run} ==  (load average before "
        f"{result['load_average_before']}, after {result['load_average_after']}, "
        f"{os.cpu_count()} CPUs)",
        f"{'target':<44} {'who':<6} {'app rps':>8} {'floor':>8} {'ratio':>6} "
        f"{'p99 ms':>8} {'floor99':>7} {'qry':>4} {'KiB':>7}  pass/fail (≥{RATIO_MIN:.0%} of "
        f"floor, p99<{P99_MAX_MS:.0f} ms, ≤{QUERIES_MAX} queries)",
    ]
    out += [line(row, counts.get((row["name"], row["who"]))) for row in result["load"]]
    out.append("queries per page (first request / warm), anonymous | signed in:")
    by_name: dict[str, dict[str, str]] = {}
    for q in result["queries"]:
        by_name.setdefault(q["name"], {})[q["who"]] = f"{q['first']}/{q['warm']}"
    out += [
        f"  {name[:44]:<44} {w.get('anonymous', '-'):>7} | {w.get('signed_in', '-')}"
        for name, w in by_name.items()
    ]
    out.append(f"search at {rows:,} rows (median; target < {SEARCH_MAX_MS:.0f} ms):")
    for s in result["search"]:
        out.append(
            f"  {s['q']:<12} {s['ms']:>8.2f} ms  ({' + '.join(map(str, s['ms_each']))}; "
            f"{s['found']} found; {s['how']})  "
            f"{'pass' if s['ms'] < SEARCH_MAX_MS else 'FAIL'}"
        )
    median = statistics.median(result["startup_s"])
    out.append(
        f"start-up to /health (voix serve, 1 worker): median {median:.2f} s of "
        f"{result['startup_s']}  {'pass' if median < STARTUP_MAX_S else 'FAIL'} (< {STARTUP_MAX_S} s)"
    )
    out.append("wire sizes (bytes: identity / gzip / br, and the encoding answered):")
    for name, sizes in result["wire"].items():
        cells = " / ".join(
            f"{sizes[e]['bytes']:,}"
            + (f" ({sizes[e]['content_encoding']})" if sizes[e]["content_encoding"] else "")
            for e in ("identity", "gzip", "br")
        )
        verdict = ""
        if any(sizes[e]["status"] != 200 for e in sizes):
            verdict = f"status {sizes['identity']['status']} "
        if name.startswith("map"):
            verdict += "pass" if sizes["br"]["bytes"] < MAP_WIRE_MAX else "FAIL"
            verdict += f" (< {MAP_WIRE_MAX // 1024} KB)"
        out.append(f"  {name[:44]:<44} {cells}  {verdict}")
    for name, ms in result["map_ms"].items():
        out.append(
            f"  {name[:44]:<44} server time once warm (sequential median): {ms:.1f} ms  "
            f"{'pass' if ms < MAP_SERVER_MAX_MS else 'FAIL'} (< {MAP_SERVER_MAX_MS:.0f} ms)"
        )
    if "casting" in result:
        cast = result["casting"]
        if "ratio" in cast:
            out.append(
                f"casting: app {cast['app_rate']:.1f} ballots/s, floor {cast['floor_rate']:.1f}, "
                f"ratio {cast['ratio']:.1%} (the median of rounds at "
                f"{', '.join(r + ' %' for r in cast['rounds'])}), "
                f"app p99 {cast['app_p99_ms']:.0f} ms  "
                f"{'pass' if cast['ratio'] >= CASTING_RATIO_MIN else 'FAIL'} (≥ 50 %)"
                + ("" if cast["app_failures"] == "none" else f" FAIL: {cast['app_failures']}")
            )
        else:
            out.append(f"casting: {cast.get('skipped') or cast.get('error') or cast['output']}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Issue 15's benchmark: the app and its floor side by side."
    )
    parser.add_argument("--rows", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--quick", action="store_true", help="shorter loads and fewer repeats")
    parser.add_argument("--runs", type=int, default=1, help="measure N times in a row")
    parser.add_argument("--skip-casting", action="store_true")
    parser.add_argument(
        "--floor",
        choices=("rendered", "bytes"),
        default="rendered",
        help="the floor's page: Jinja from memory (the issue's), or the captured bytes as is",
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    wrk_path()  # a clear message before anything starts
    sizes = [int(n.replace("_", "")) for n in args.rows.split(",") if n.strip()]
    databases = [d.strip() for d in args.db.split(",") if d.strip()]
    if unknown := set(databases) - {"sqlite", "postgres"}:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "started": stamp,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "runs": [],
    }
    texts = []
    json_path = OUT / f"results-{stamp}.json"
    for db in databases:
        for rows in sizes:
            url = fresh_database(db, rows)
            if url is None:
                continue
            env = environment(url)
            try:
                print(f"\n{db}, {rows:,} proposals: seeding…", flush=True)
                info = inproc("seed", env, "--rows", str(rows))
                print(f"  seeded: {info}", flush=True)
                for run in range(1, args.runs + 1):
                    print(f"{db}, {rows:,} proposals, run {run}: measuring…", flush=True)
                    result = measure(db, env, info, args)
                    results["runs"].append(
                        {"db": db, "rows": rows, "run": run, "seed": info, **result}
                    )
                    texts.append(report(db, rows, run, result))
                    print(texts[-1], flush=True)
                    json_path.write_text(json.dumps(results, ensure_ascii=False, indent=1))
            finally:
                if db == "postgres" and not args.keep:
                    with suppress(Exception):
                        asyncio.run(_postgres(create=False))
    print("\n\n".join(["", "Summary", *texts]))
    print(f"\nJSON: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
