"""The floor: a bare Litestar app serving pages of the same size as the app's, rendered from
memory.

For each page bench/run.py measures, it captures the app's response body once and writes the
bodies to a JSON file (BENCH_FLOOR_PAGES). For body number N this app serves:

- `/N`: a page of the same size in bytes, rendered by Jinja (Litestar's template engine, the
  app's autoescaping) from rows held in memory: a layout and a list of cards like the app's
  list, as many as make the size. No database, no middleware, no session: what the issue calls
  "a bare Litestar page of the same size rendered from memory" (≈ 1.4 ms of CPU when the issue
  was written). The ratios are taken against it.
- `/bytes/N`: the captured body itself, as bytes: what the framework and the server cost with
  no rendering at all (reported for reference with --floor bytes).

    BENCH_FLOOR_PAGES=var/bench/floor-pages.json \\
        .venv/bin/python -m uvicorn floor:app --app-dir bench --port 8802 \\
        --workers 2 --loop uvloop --http httptools --log-level warning --no-access-log
"""

from __future__ import annotations

import base64
import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from litestar import Litestar, Response, get
from litestar.exceptions import NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

LAYOUT = """<!doctype html>
<html lang="fr" dir="ltr"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/app.css"></head>
<body><header><a href="/">Voix des Quartiers</a></header><main><h1>{{ title }}</h1>
<p class="count">{{ rows | length }} propositions</p>
<ul class="cards proposal-list">
{% for row in rows %}<li class="card proposal-card"><p class="theme">{{ row.theme }}</p>
<h3 lang="fr" dir="auto"><a href="/proposals/{{ row.id }}">{{ row.title }}</a></h3>
<p class="meta"><span class="badge {{ row.status }}">{{ row.status }}</span> Proposé par <bdi>{{ row.author }}</bdi> · <bdi>{{ row.created.isoformat() }}</bdi> · {{ row.supports }} soutiens</p></li>
{% endfor %}</ul>{{ padding }}</main></body></html>
"""
ENVIRONMENT = Environment(
    loader=DictLoader({"floor.html": LAYOUT}), autoescape=select_autoescape(["html"])
)
THEMES = ("Logement", "Transports", "Jeunesse", "Espace public", "École")
STATUSES = ("submitted", "discussion", "adopted", "rejected", "transmitted")


def _row(n: int) -> dict[str, Any]:
    return {
        "id": n,
        "theme": THEMES[n % len(THEMES)],
        "title": f"Proposition {n} : réparer l'ascenseur & le banc <devant> l'école",
        "status": STATUSES[n % len(STATUSES)],
        "author": f"Habitante {n % 97}",
        "created": date(2026, 11, 1) - timedelta(days=n % 300),
        "supports": n % 37,
    }


def _context(size: int) -> dict[str, Any]:
    """Rows enough for a page of `size` bytes (the rest as padding text, escaped too)."""
    empty = len(ENVIRONMENT.get_template("floor.html").render(title="Table", rows=[], padding=""))
    one = len(
        ENVIRONMENT.get_template("floor.html").render(title="Table", rows=[_row(1)], padding="")
    )
    rows = [_row(n) for n in range(max(0, (size - empty) // max(1, one - empty)))]
    made = len(ENVIRONMENT.get_template("floor.html").render(title="Table", rows=rows, padding=""))
    return {"title": "Table", "rows": rows, "padding": "x" * max(0, size - made)}


def _load() -> list[tuple[bytes, str, dict[str, Any]]]:
    source = os.environ.get("BENCH_FLOOR_PAGES")
    if not source:
        return []
    pages = json.loads(Path(source).read_text())
    loaded = []
    for page in pages:
        body = base64.b64decode(page["body_b64"])
        loaded.append((body, page["content_type"], _context(len(body))))
    return loaded


PAGES = _load()


@get("/health", sync_to_thread=False)
def health() -> str:
    return "ok"


@get("/{number:int}", sync_to_thread=False)
def rendered(number: int) -> Template:
    if not 0 <= number < len(PAGES):
        raise NotFoundException()
    return Template(template_name="floor.html", context=PAGES[number][2])


@get("/bytes/{number:int}", sync_to_thread=False)
def captured(number: int) -> Response[bytes]:
    if not 0 <= number < len(PAGES):
        raise NotFoundException()
    body, content_type, _ = PAGES[number]
    return Response(content=body, media_type=content_type)


app = Litestar(
    route_handlers=[health, rendered, captured],
    template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(ENVIRONMENT)),
    openapi_config=None,
    debug=False,
)
