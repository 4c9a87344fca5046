"""Render the demo brief in each language and print pages, size, time and peak memory.

DATABASE_URL=sqlite:///var/bench.sqlite3 .venv/bin/python bench/pdf_brief.py
"""

from __future__ import annotations

import asyncio
import io
import resource
import statistics
import time

from pypdf import PdfReader

from exports.pdf import render_brief
from exports.services import load
from voix.db import migrate
from voix.demo import seed

ROUNDS = 5


async def main() -> None:
    await migrate()
    await seed()
    document = await load("flamants-renovation")
    render_brief(document, "fr")  # warm-up: fonts and templates load once per process
    for lang in ("fr", "ar", "en"):
        times, content = [], b""
        for _ in range(ROUNDS):
            start = time.perf_counter()
            content = render_brief(document, lang)
            times.append(time.perf_counter() - start)
        pages = len(PdfReader(io.BytesIO(content)).pages)
        print(
            f"brief flamants-renovation [{lang}]: {pages} pages, {len(content) / 1024:.1f} KiB, "
            f"render median {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, "
            f"max {max(times) * 1000:.0f}, {ROUNDS} rounds)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the process: {peak:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
