"""The application as a server process runs it (`voix serve`, the benchmarks): the app of
voix.app, with Python's cyclic garbage collector kept out of its start-up and away from what
start-up made.

Measured on the 2-core machine (issue 15): importing the app and building it made about 150,000
objects the collector tracks, and it walked them all at start-up (0.1–0.3 s of the time to
/health) and then every 7–10 s under load, each time stalling that worker's requests for
90–150 ms. So the collector is off while this module imports the app, and once the app has
started (its last start-up hook) what exists is frozen — moved where the collector no longer
looks (`gc.freeze`, Python's own advice for servers) — and the collector is switched back on
for what requests make: its full passes then take 12–20 ms (they walk what requests keep:
compiled templates, kept pages, locale data). What freezing keeps without collecting is the
few unreachable objects start-up left (about 1,300, once).

Tests build the app from voix.app, collector untouched: this is for processes that serve.
"""

from __future__ import annotations

import gc

gc.disable()  # before the imports below; switched back on by settle_heap

from litestar import Litestar  # noqa: E402

from voix.app import create_app as _assemble  # noqa: E402


def settle_heap() -> None:
    """The last start-up hook: what import and start-up made is frozen, the collector on."""
    gc.freeze()
    gc.enable()


def create_app() -> Litestar:
    """uvicorn's factory (`voix.asgi:create_app`)."""
    app = _assemble()
    app.on_startup.append(settle_heap)
    return app
