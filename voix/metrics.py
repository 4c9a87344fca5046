"""`/metrics` for operators, in Prometheus' text format: requests, latencies, votes open, jobs
waiting, the process's memory.

Off unless VOIX_METRICS_TOKEN is set: then it answers only to `Authorization: Bearer TOKEN`
(401 otherwise), and without it the path does not exist (404). It sets no cookie and needs no
CSRF token: a scraper is not a browser.

Each process counts its own requests and exposes them: with two replicas, Prometheus scrapes
each replica's address (not the proxy's, which would answer from either) and sums them; the
`instance` label tells them apart. `voix serve` runs one uvicorn process per replica, so
prometheus_client's multi-process mode (a shared directory of files) is not needed; running
uvicorn with several `--workers` would need it, or each worker's counts would be a sample.

Requests are counted by route template (`/votes/{vote_id}`), never by raw path: ids and card
codes stay out of the labels, and the number of series stays bounded by the number of routes.
A path no route matches counts as "(unmatched)". Event streams are counted but kept out of the
latency histogram (they last as long as a screen stays open) and counted open instead.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Awaitable

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from voix.logs import Finished
from voix.settings import get_settings

# The project's own registry: the library's default one would also carry whatever another
# imported library registers.
REGISTRY = CollectorRegistry()
# A `_created` series beside each counter would double the series for a date Prometheus
# does not need (it sees resets itself).
disable_created_metrics()
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, CPU, open files

REQUESTS = Counter(
    "voix_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "voix_http_request_duration_seconds",
    "Time from a request's arrival to its last byte sent (event streams excluded).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
STREAMS_OPEN = Gauge(
    "voix_event_streams_open",
    "Live event streams (meeting rooms, votes) being sent by this process.",
    registry=REGISTRY,
)
VOTES_OPEN = Gauge(
    "voix_votes_open",
    "Votes open for ballots (all tables; NaN when the database did not answer).",
    registry=REGISTRY,
)
JOBS_WAITING = Gauge(
    "voix_jobs_waiting",
    "Background jobs waiting to run (NaN when the queue could not be read).",
    registry=REGISTRY,
)

# The text format every Prometheus reads (metric names here need none of 1.0.0's escaping);
# Litestar adds the charset.
TEXT_FORMAT = "text/plain; version=0.0.4"

# A scrape reads the database at most this often, however many scrapers ask.
DATABASE_READ_EVERY_SECONDS = 5.0
DATABASE_TIMEOUT_SECONDS = 2.0
_last_read = -math.inf


def stream_started() -> None:
    """Called by voix.logs.access_middleware when a response turns out to be an event stream."""
    STREAMS_OPEN.inc()


def observe(finished: Finished) -> None:
    """Called by voix.logs.access_middleware once each response is over."""
    REQUESTS.labels(finished.method, finished.route, str(finished.status)).inc()
    if finished.stream:
        STREAMS_OPEN.dec()
    else:
        LATENCY.labels(finished.method, finished.route).observe(finished.duration)


async def _count_open_votes() -> int:
    # Imported here: voix/ is the floor the domains stand on (domains import voix.middleware,
    # which imports this module); only this read, at scrape time, reaches up.
    from votes.models import OPEN, Vote  # noqa: PLC0415

    return int(await Vote.count().where(Vote.status == OPEN))


async def _count_waiting_jobs() -> int:
    from voix import jobs  # noqa: PLC0415 — jobs.models is a domain app, as above

    return await jobs.depth()


async def _read(gauge: Gauge, read: Awaitable[int]) -> None:
    value: float
    try:
        value = await asyncio.wait_for(read, timeout=DATABASE_TIMEOUT_SECONDS)
    except Exception:
        # Metrics must answer during an outage too (the outage is logged elsewhere): NaN says
        # "unknown", where a stale or zero value would mislead.
        value = math.nan
    gauge.set(value)


async def _refresh() -> None:
    global _last_read  # noqa: PLW0603 — one cache per process, like the counters
    now = time.monotonic()
    if now - _last_read < DATABASE_READ_EVERY_SECONDS:
        return
    _last_read = now
    await _read(VOTES_OPEN, _count_open_votes())
    await _read(JOBS_WAITING, _count_waiting_jobs())


def _authorised(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant time: the comparison must not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@get("/metrics", include_in_schema=False, exclude_from_csrf=True, cache=False)
async def metrics(request: Request) -> Response[bytes]:
    token = get_settings().metrics_token
    if token is None:
        raise NotFoundException()
    if not _authorised(request, token):
        return Response(
            b"",
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="metrics"', "cache-control": "no-store"},
        )
    await _refresh()
    return Response(
        generate_latest(REGISTRY),
        media_type=TEXT_FORMAT,
        headers={"cache-control": "no-store"},
    )
