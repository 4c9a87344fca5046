"""The floor: a bare Litestar app serving, from memory, pages of the same size as the app's.

For each page bench/run.py measures, it captures the app's response body once and writes the
bodies to a JSON file (BENCH_FLOOR_PAGES); this app serves body number N at `/N`, with the
app's content type, as fast as the framework and the server can (no database, no template,
no middleware). What the app does per request beyond that is what the ratio measures.

    BENCH_FLOOR_PAGES=var/bench/floor-pages.json \\
        .venv/bin/python -m uvicorn floor:app --app-dir bench --port 8802 \\
        --workers 2 --loop uvloop --http httptools --log-level warning --no-access-log
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from litestar import Litestar, Response, get
from litestar.exceptions import NotFoundException


def _load() -> list[tuple[bytes, str]]:
    source = os.environ.get("BENCH_FLOOR_PAGES")
    if not source:
        return []
    pages = json.loads(Path(source).read_text())
    return [(base64.b64decode(p["body_b64"]), p["content_type"]) for p in pages]


PAGES = _load()


@get("/health", sync_to_thread=False)
def health() -> str:
    return "ok"


@get("/{number:int}", sync_to_thread=False)
def captured(number: int) -> Response[bytes]:
    if not 0 <= number < len(PAGES):
        raise NotFoundException()
    body, content_type = PAGES[number]
    return Response(content=body, media_type=content_type)


app = Litestar(route_handlers=[health, captured], openapi_config=None, debug=False)
