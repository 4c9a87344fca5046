"""Time the maps with many placed proposals, through the real ASGI app.

    DATABASE_URL=sqlite:///var/bench-maps.sqlite3 .venv/bin/python bench/map_pages.py [N]
Seeds the Flamants table up to N placed proposals (default 10,000) inside its district, then
times the interactive map (folium, every point as JSON data), the table page (its static SVG
map draws the latest 500) and the map of all tables.
"""

from __future__ import annotations

import asyncio
import random
import sys

from timing import time_pages  # bench/timing.py

from maps.models import Place
from proposals.models import Proposal
from tables.models import Table
from voix import db
from voix.demo import seed

ROUNDS = 10


async def main(wanted: int) -> None:
    await db.migrate()
    await seed()
    await db.engine().start()
    table = await Table.select(Table.id).where(Table.slug == "flamants-iris").first()
    centre = (
        await Place.select(Place.latitude, Place.longitude)
        .where(Place.name == "Centre social Flamants-Iris")
        .first()
    )
    have = await Proposal.count().where(
        (Proposal.table == table["id"]) & Proposal.latitude.is_not_null()
    )
    themes = ("housing", "transport", "youth", "public_space", "school", "health")
    rng = random.Random(7)  # noqa: S311 — spreading points, not secrets
    for start in range(have, wanted, 1000):
        await Proposal.insert(
            *[
                Proposal(
                    table=table["id"],
                    title=f"Proposition placée {n}",
                    body="Texte. " * 20,
                    theme=themes[n % len(themes)],
                    language="fr",
                    latitude=centre["latitude"] + rng.uniform(-0.002, 0.002),
                    longitude=centre["longitude"] + rng.uniform(-0.002, 0.002),
                )
                for n in range(start, min(start + 1000, wanted))
            ]
        )
    await time_pages(
        (
            "/tables/flamants-iris/map",
            "/tables/flamants-iris/map?theme=transport",
            "/tables/flamants-iris",
            "/map",
        ),
        ROUNDS,
    )
    await db.engine().stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
