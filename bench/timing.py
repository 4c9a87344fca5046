"""Times pages through the real ASGI app and prints a line per page: size, median, queries."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable

import httpx

from voix import db
from voix.app import create_app


async def time_pages(urls: Iterable[str], rounds: int) -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for url in urls:
            times = []
            for _ in range(rounds):
                before = db.engine().queries_run
                start = time.perf_counter()
                response = await client.get(url)
                times.append(time.perf_counter() - start)
                queries = db.engine().queries_run - before
            print(
                f"{url:<62} {response.status_code} {len(response.content) / 1024:8.1f} KiB "
                f"median {statistics.median(times) * 1000:7.1f} ms  {queries} queries"
            )
