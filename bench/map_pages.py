"""The interactive map with many placed proposals, through a real server and a real browser.

    DATABASE_URL=sqlite:///var/bench-maps.sqlite3 .venv/bin/python bench/map_pages.py [N] [--port=8811]
    DATABASE_URL=postgresql://…/voix_bench_maps   .venv/bin/python bench/map_pages.py [N]

Seeds the demo, then the Flamants table up to N placed proposals (default 10,000) spread over
its district, with titles of varied words (real titles compress less than "Proposition N"). Starts
uvicorn as in production (2 workers, uvloop, httptools) on --port, and prints, for the page and
its points (the issue 15 targets: < 250 KB on the wire, < 50 ms of server time once warm,
markers shown < 1.5 s in Chromium):
- bytes: raw, gzip and brotli as served (Accept-Encoding), and the points' 304;
- server time: median and max of ROUNDS requests once warm (each worker has built its caches),
  measured by the client over loopback, so an upper bound of the server's time;
- Chromium (headless, external requests aborted: the tiles): from `goto` to the markers drawn
  (`<html data-points-drawn>`, set by voix/static/map-points.js), with an empty browser cache
  (a new context each time) and with a warm one (reload: the points revalidate with a 304).
The machine is shared: figures from one run are noisy; compare runs made side by side.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from maps.models import Place
from proposals.models import Proposal
from tables.models import Table
from voix import db
from voix.demo import PROPOSALS, seed

ROOT = Path(__file__).resolve().parent.parent

ROUNDS = 30
BROWSER_ROUNDS = 5
WORKERS = 2
TABLE = "flamants-iris"
PATHS = (
    f"/tables/{TABLE}/map",
    f"/tables/{TABLE}/map/points",
    f"/tables/{TABLE}/map?theme=transport",
    f"/tables/{TABLE}/map/points?theme=transport",
    "/map",
    "/map/points",
)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


async def seed_points(wanted: int) -> int:
    await db.migrate()
    await seed()
    await db.engine().start()
    try:
        table = await Table.select(Table.id).where(Table.slug == TABLE).first()
        centre = (
            await Place.select(Place.latitude, Place.longitude)
            .where(Place.name == "Centre social Flamants-Iris")
            .first()
        )
        have = await Proposal.count().where(
            (Proposal.table == table["id"]) & Proposal.latitude.is_not_null()
        )
        words = " ".join(f"{p[4]} {p[5]}" for p in PROPOSALS).split()
        themes = ("housing", "transport", "youth", "public_space", "school", "health")
        rng = random.Random(7)  # noqa: S311 - spreading points, not secrets
        for start in range(have, wanted, 1000):
            await Proposal.insert(
                *[
                    Proposal(
                        table=table["id"],
                        title=" ".join(rng.choice(words) for _ in range(rng.randint(4, 10)))[:130]
                        + f" {n}",
                        body="Texte. " * 20,
                        theme=themes[n % len(themes)],
                        language="fr",
                        latitude=centre["latitude"] + rng.uniform(-0.003, 0.003),
                        longitude=centre["longitude"] + rng.uniform(-0.004, 0.004),
                    )
                    for n in range(start, min(start + 1000, wanted))
                ]
            )
        await db.analyze()
        return int(
            await Proposal.count().where(
                (Proposal.table == table["id"]) & Proposal.latitude.is_not_null()
            )
        )
    finally:
        await db.engine().stop()


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOIX_ENV": "production",
        "VOIX_SECRET_KEY": os.environ.get("VOIX_SECRET_KEY") or "bench-maps-" + "k" * 40,
        "VOIX_ALLOWED_HOSTS": f"127.0.0.1:{port},127.0.0.1",
        "VOIX_BASE_URL": f"http://127.0.0.1:{port}",
        "VOIX_LOG_FORMAT": "json",
        "PICCOLO_CONF": "voix.piccolo_conf",
    }
    server = subprocess.Popen(  # noqa: S603 - our own command line
        [
            str(ROOT / ".venv" / "bin" / "uvicorn"),
            "voix.asgi:create_app",
            "--factory",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--workers={WORKERS}",
            "--loop=uvloop",
            "--http=httptools",
            "--no-access-log",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError("the server did not start")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def wire_bytes(client: httpx.Client, url: str, encoding: str) -> tuple[int, str]:
    with client.stream("GET", url, headers={"accept-encoding": encoding}) as response:
        size = sum(len(chunk) for chunk in response.iter_raw())
        return size, response.headers.get("etag", "")


def http_figures(base: str) -> None:
    with httpx.Client(base_url=base, timeout=120) as client:
        print(
            f"{'path':<44} {'raw':>9} {'gzip':>9} {'br':>9}  {'cold':>8} {'median':>8} {'max':>8}"
        )
        for path in PATHS:
            started = time.perf_counter()
            client.get(path, headers={"accept-encoding": "br"})  # the first build
            cold = time.perf_counter() - started
            for _ in range(6):  # every worker builds and keeps its own
                client.get(path, headers={"accept-encoding": "br"})
            times = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                client.get(path, headers={"accept-encoding": "br"})
                times.append(time.perf_counter() - started)
            raw, etag = wire_bytes(client, path, "identity")
            gz, _ = wire_bytes(client, path, "gzip")
            br, _ = wire_bytes(client, path, "br")
            print(
                f"{path:<44} {raw / 1024:7.1f}KB {gz / 1024:7.1f}KB {br / 1024:7.1f}KB "
                f" {cold * 1000:6.0f}ms {statistics.median(times) * 1000:6.1f}ms "
                f"{max(times) * 1000:6.1f}ms"
            )
            if etag:
                revalidated = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    answer = client.get(path, headers={"if-none-match": etag})
                    revalidated.append(time.perf_counter() - started)
                print(
                    f"{'  … If-None-Match':<44} {answer.status_code:>9} "
                    f"{'':>9} {'':>9}  {'':>8} {statistics.median(revalidated) * 1000:6.1f}ms "
                    f"{max(revalidated) * 1000:6.1f}ms"
                )


async def browser_figures(base: str, path: str, count: int) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS
        )
        try:
            cold, warm = [], []
            for _ in range(BROWSER_ROUNDS):
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                await context.route(
                    lambda url: not url.startswith(base), lambda route: route.abort()
                )
                page = await context.new_page()
                started = time.perf_counter()
                await page.goto(base + path)
                await page.wait_for_selector("html[data-points-drawn]", timeout=60_000)
                cold.append(time.perf_counter() - started)
                drawn = await page.get_attribute("html", "data-points-drawn")
                started = time.perf_counter()
                await page.reload()
                await page.wait_for_selector("html[data-points-drawn]", timeout=60_000)
                warm.append(time.perf_counter() - started)
                clusters = await page.locator(".marker-cluster, .map-marker").count()
                await context.close()
            print(
                f"Chromium {path}: {drawn} of {count} points drawn ({clusters} clusters/markers "
                f"on screen); goto → drawn median {statistics.median(cold):.2f} s "
                f"(max {max(cold):.2f}), reload {statistics.median(warm):.2f} s "
                f"(max {max(warm):.2f}), {BROWSER_ROUNDS} rounds"
            )
        finally:
            await browser.close()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    port = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--port=")), 8811)
    wanted = int(args[0]) if args else 10_000
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT}/var/bench-maps.sqlite3")
    os.environ.setdefault("PICCOLO_CONF", "voix.piccolo_conf")
    os.environ.setdefault("VOIX_SECRET_KEY", "bench-maps-" + "k" * 40)
    count = asyncio.run(seed_points(wanted))
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    print(f"map of {count} placed proposals ({database}), {WORKERS} workers, port {port}")
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        http_figures(base)
        asyncio.run(browser_figures(base, f"/tables/{TABLE}/map", count))
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
