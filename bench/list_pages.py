"""Time the public list pages through the real ASGI app, and count their queries.

    DATABASE_URL=sqlite:///var/bench.sqlite3 .venv/bin/python bench/list_pages.py [N]
Seeds N extra proposals (default 1,000) on the Flamants table first.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import httpx

from proposals.models import Proposal
from tables.models import Table
from voix import db
from voix.app import create_app
from voix.demo import seed

ROUNDS = 20


async def main(extra: int) -> None:
    await db.migrate()
    await seed()
    await db.engine().start()
    table = await Table.select(Table.id).where(Table.slug == "flamants-iris").first()
    have = await Proposal.count().where(Proposal.table == table["id"])
    if have < extra:
        await Proposal.insert(
            *[
                Proposal(
                    table=table["id"],
                    title=f"Proposition de test {n}",
                    body="Texte " * 40,
                    theme=("housing", "transport", "youth")[n % 3],
                    language="fr",
                )
                for n in range(extra - have)
            ]
        )
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for url in (
            "/",
            "/tables/flamants-iris",
            "/tables/flamants-iris?theme=housing",
            "/api/v1/tables/flamants-iris/proposals",
        ):
            times = []
            for _ in range(ROUNDS):
                before = db.engine().queries_run
                start = time.perf_counter()
                response = await client.get(url)
                times.append(time.perf_counter() - start)
                queries = db.engine().queries_run - before
            print(
                f"{url:<45} {response.status_code} {len(response.content) / 1024:7.1f} KiB "
                f"median {statistics.median(times) * 1000:6.1f} ms  {queries} queries"
            )
    await db.engine().stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
