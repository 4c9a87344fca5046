"""CPU work and the event loop: Markdown at the length limit, and PDFs in threads vs the pool.

    DATABASE_URL=sqlite:///var/bench-cpu.sqlite3 .venv/bin/python bench/cpu_work.py [N]

Prints how long the minutes' Markdown takes for pathological inputs at MINUTES_MAX, then the
longest pause of the event loop (a ticker sleeping 10 ms) while N renderings of the demo brief
in Arabic run in threads (as before) and in the worker pool (voix.workers), and what a
download of the stored PDF costs afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import Any

import anyio.to_thread
import httpx

from exports import services as briefs
from exports.pdf import render_brief
from meetings.services import MINUTES_MAX, minutes_html
from voix import db, workers
from voix.app import create_app
from voix.demo import seed

PATHOLOGICAL = {"[": "[", ">": ">", "*": "*", "![": "![", "*a": "*a", "<": "<", "[a](": "[a]("}


async def longest_pause(work: Awaitable[Any]) -> tuple[float, float]:
    """(seconds the work took, longest gap between two 10 ms ticks meanwhile)."""
    gaps: list[float] = []
    done = False

    async def tick() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    start = time.perf_counter()
    await work
    took = time.perf_counter() - start
    done = True
    await ticker
    return took, max(gaps)


async def main(concurrent: int) -> None:
    for name, unit in PATHOLOGICAL.items():
        text = (unit * MINUTES_MAX)[:MINUTES_MAX]
        start = time.perf_counter()
        minutes_html(text)
        print(f"minutes Markdown {name!r:6} x {MINUTES_MAX}: {time.perf_counter() - start:.2f} s")

    await db.migrate()
    await seed()
    await db.engine().start()
    _brief, version = await briefs.version("flamants-renovation")
    document, _shown = await briefs.read(version, "ar")
    await workers.run(render_brief, document, "ar")  # workers started and warm
    render_brief(document, "ar")  # this process warm too

    def in_threads() -> Awaitable[Any]:
        return asyncio.gather(
            *[anyio.to_thread.run_sync(render_brief, document, "ar") for _ in range(concurrent)]
        )

    def in_pool() -> Awaitable[Any]:
        return asyncio.gather(
            *[workers.run(render_brief, document, "ar") for _ in range(concurrent)]
        )

    for label, work in (("threads", in_threads), ("pool", in_pool)):
        took, pause = await longest_pause(work())
        print(
            f"{concurrent} renderings of the Arabic demo brief in {label:7}: {took:.2f} s, "
            f"longest loop pause {pause * 1000:.0f} ms"
        )

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        url = "/briefs/flamants-renovation/pdf/ar"
        for label in ("first download (renders, stores)", "next download (stored)"):
            took, pause = await longest_pause(client.get(url))
            print(f"{label:34}: {took * 1000:.0f} ms, longest loop pause {pause * 1000:.0f} ms")
    workers.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4))
