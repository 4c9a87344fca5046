"""Bytes on the wire and the CPU that compression costs (issue 15).

    DATABASE_URL=sqlite:///var/bench-wire.sqlite3 .venv/bin/python bench/wire.py [N]

Seeds the demo (once), then prints, for a table's list page, the home page, the open-data JSON
and the largest static files: their size raw, gzip and brotli at the levels the edge uses
(voix.middleware) and at the best ones (voix.static, once per file); the CPU time of one
compression at each level (the best of N, in this process); and the whole request through the
in-process app with and without `Accept-Encoding: br`, interleaved, median of N. Figures taken
while other work runs on the machine are noisy: compare them within one run.
"""

from __future__ import annotations

import asyncio
import gzip
import statistics
import sys
import time
from collections.abc import Callable

import brotli
import httpx

from voix import db, middleware
from voix.app import create_app
from voix.demo import seed
from voix.static import STATIC_DIR

PAGES = ["/tables/flamants-iris", "/", "/api/v1/tables/flamants-iris/proposals"]
STATIC = ["app.css", "htmx-2.0.11.min.js", "leaflet-1.9.4/leaflet.js"]


def best_time(work: Callable[[], object], n: int) -> float:
    """The least CPU time of n runs of `work`, in ms."""
    times = []
    for _ in range(n):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times) * 1000


def sizes(label: str, body: bytes, n: int) -> None:
    edge_br = middleware.BROTLI_QUALITY
    edge_gz = middleware.GZIP_LEVEL
    gzip_levels = sorted({edge_gz, 9})
    brotli_qualities = sorted({4, 5, edge_br, 11})
    rows = [
        *(
            (f"gzip {lv}", lambda lv=lv: gzip.compress(body, compresslevel=lv))
            for lv in gzip_levels
        ),
        *((f"br {q}", lambda q=q: brotli.compress(body, quality=q)) for q in brotli_qualities),
    ]
    print(f"{label}: {len(body):,} B raw")
    for name, work in rows:
        packed = work()
        assert isinstance(packed, bytes)
        cpu = best_time(work, n if "11" not in name else max(1, n // 10))
        print(
            f"    {name:8} {len(packed):>9,} B  ({len(packed) / len(body):5.1%})  {cpu:7.2f} ms CPU"
        )


async def main(n: int) -> None:
    await db.migrate()
    await db.engine().start()
    try:
        await seed()
    except Exception as error:  # seeded already
        print(f"(demo: {error.__class__.__name__}, kept as is)")
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for path in PAGES:
            response = await client.get(path, headers={"accept-encoding": "identity"})
            sizes(f"{path} ({response.status_code})", response.content, n)
        for name in STATIC:
            sizes(f"/static/{name}", (STATIC_DIR / name).read_bytes(), n)

        print(f"\nWhole request in process, median of {n} (interleaved), ms wall:")
        for path in PAGES:
            timings: dict[str, list[float]] = {"identity": [], "br": [], "gzip": []}
            for _ in range(n):
                for encoding, times in timings.items():
                    started = time.perf_counter()
                    await client.get(path, headers={"accept-encoding": encoding})
                    times.append((time.perf_counter() - started) * 1000)
            medians = {k: statistics.median(v) for k, v in timings.items()}
            print(
                f"    {path}: identity {medians['identity']:.2f}, br {medians['br']:.2f} "
                f"(+{medians['br'] - medians['identity']:.2f}), gzip {medians['gzip']:.2f} "
                f"(+{medians['gzip'] - medians['identity']:.2f})"
            )
    await db.engine().stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
