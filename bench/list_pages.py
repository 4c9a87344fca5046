"""Time the public list pages through the real ASGI app, and count their queries.

    DATABASE_URL=sqlite:///var/bench.sqlite3 .venv/bin/python bench/list_pages.py [N]
Seeds the Flamants table up to N proposals (default 10,000) first, with varied themes,
statuses, supports and words, then times the list pages, filtered, searched and sorted.
"""

from __future__ import annotations

import asyncio
import sys

from timing import time_pages  # bench/timing.py

from proposals.models import Proposal
from tables.models import Table
from voix import db
from voix.demo import seed

ROUNDS = 20


async def main(extra: int) -> None:
    await db.migrate()
    await seed()
    await db.engine().start()
    table = await Table.select(Table.id).where(Table.slug == "flamants-iris").first()
    have = await Proposal.count().where(Proposal.table == table["id"])
    words = ("ascenseur", "banc", "bus", "école", "propreté", "jardin", "lumière", "parking")
    statuses = ("submitted", "discussion", "adopted", "rejected", "transmitted")
    themes = ("housing", "transport", "youth", "public_space", "school")
    for start in range(have, extra, 1000):
        await Proposal.insert(
            *[
                Proposal(
                    table=table["id"],
                    title=f"Proposition {n} : {words[n % len(words)]} et {words[(n * 7) % len(words)]}",
                    body=f"Texte de la proposition {n}, {words[(n * 3) % len(words)]}. " * 8,
                    theme=themes[n % len(themes)],
                    status=statuses[n % len(statuses)],
                    supports=n % 37,
                    language="fr",
                )
                for n in range(start, min(start + 1000, extra))
            ]
        )
    await time_pages(
        (
            "/",
            "/tables/flamants-iris",
            "/tables/flamants-iris?theme=housing",
            "/tables/flamants-iris?q=ascenseur",
            "/tables/flamants-iris?q=jardin&theme=transport&status=adopted",
            "/tables/flamants-iris?sort=supports",
            "/tables/flamants-iris?q=lumi%C3%A8re&sort=supports&page=5",
            "/api/v1/tables/flamants-iris/proposals",
        ),
        ROUNDS,
    )
    await db.engine().stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
