"""CPU work stays off the event loop: heavy requests run while a ticker measures the loop.

The ticker sleeps 10 ms at a time and records the longest gap between two ticks while a heavy
request goes through the real app. Rendering on the loop (or in a thread, which WeasyPrint and
folium hold through the GIL) shows as gaps of a second or more; in the worker pool the loop
only waits.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from pypdf import PdfReader

from exports.models import StoredPdf
from meetings.models import Minutes
from proposals.models import ADOPTED, Proposal
from tests.factories import (
    World,
    add_proposal,
    build_world,
    post_form,
    publish_brief,
    sign_in,
    sign_out,
    t,
)
from voix import workers
from voix.i18n import LOCAL_TIMEZONE
from voix.settings import PROJECT_ROOT

MAX_GAP = 0.25  # seconds: a page stays responsive while a document is made
TICK = 0.01
READERS = 8


@asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """Yields the list of gaps between ticks, filled while the block runs."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    # What the test session piled up so far (apps, templates, rows of earlier tests) is set
    # aside: a full collection of it pauses any thread 0.3-0.8 s, whatever the request does.
    gc.collect()
    gc.freeze()
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(TICK * 3)
    try:
        yield gaps
    finally:
        done.set()
        await ticker
        gc.unfreeze()


async def watched(request: Awaitable[Any]) -> tuple[Any, float]:
    """The request's response, and the longest the loop went without running the ticker."""
    async with loop_watch() as gaps:
        response = await request
    assert len(gaps) > 3  # the ticker really ran beside the request
    print(f"longest gap {max(gaps) * 1000:.0f} ms over {len(gaps)} ticks")  # shown on failure
    return response, max(gaps)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


# A brief long enough to keep WeasyPrint busy for seconds, in Arabic (shaping, right to left).
ARABIC_BODY = (
    "الحاويات الموجودة تمتلئ بسرعة يوم السوق، ونطلب من البلدية إضافة حاويات جديدة قرب المدخل "
    "الشمالي وتنظيفها مرتين في الأسبوع، مع لافتات بالعربية والفرنسية. "
) * 6


async def big_brief(client: AsyncClient, proposals: int = 45) -> str:
    world = await build_world()
    for n in range(proposals):
        await add_proposal(
            world.table_a, f"اقتراح رقم {n}: حاويات نفايات إضافية", language="ar", status=ADOPTED,
            body=ARABIC_BODY,
        )  # fmt: skip
    slug = await publish_brief(
        world.table_a, world.users["facilitator_a"], title="Nos priorités pour le quartier"
    )
    return f"/briefs/{slug}"


async def test_the_loop_keeps_ticking_while_readers_rush_to_a_big_arabic_brief(
    client: AsyncClient,
) -> None:
    """Eight first readers at once (a brief shared in a group chat): in threads, WeasyPrint's
    renderings took turns with the loop for the GIL and it stalled ~0.5 s at a time."""
    brief = await big_brief(client)
    started = time.perf_counter()
    responses, gap = await watched(
        asyncio.gather(*[client.get(f"{brief}/pdf/ar") for _ in range(READERS)])
    )
    took = time.perf_counter() - started
    assert [r.status_code for r in responses] == [200] * READERS
    assert len(PdfReader(io.BytesIO(responses[0].content)).pages) > 3
    assert all(r.content == responses[0].content for r in responses)  # one rendering, shared
    assert took > 4 * MAX_GAP  # the work was heavy: the gap bound means something
    assert gap < MAX_GAP, f"the loop stalled {gap:.2f} s during {took:.1f} s of rendering"


# Minutes


def next_week() -> dict[str, str]:
    day = (datetime.now(LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    return {"date": day, "start": "18:30", "end": "20:00"}


async def held_meeting(client: AsyncClient, world: World | None = None) -> int:
    """A meeting of the Flamants table, held and closed; the facilitator stays signed in."""
    world = world or await build_world()
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        "/tables/flamants-iris/meetings",
        {
            "title": "Réunion de la table",
            **next_week(),
            "place": "Centre social Flamants-Iris",
            "address": "12 avenue Salvador Allende, 13014 Marseille",
            "languages": ["fr", "ar"],
            "agenda": "Accueil",
        },
    )
    assert response.status_code == 303, response.text
    meeting_id = int(response.headers["location"].rsplit("/", 1)[1])
    for step in ("open", "close"):
        done = await post_form(client, f"/meetings/{meeting_id}/{step}", {})
        assert done.status_code == 303, done.text
    return meeting_id


# Typed as Markdown, each at the length limit; and a piece of the page it comes out as.
PATHOLOGICAL = {
    "brackets": ("[" * 50_000, "<p>" + "[" * 1000),  # ~1 s of markdown-it: it froze the loop
    "images": ("![" * 25_000, "<p>" + "![" * 500),
    "quotes": (">" * 50_000, "<blockquote>\n" * 10),  # nesting stops at maxNesting (20)
    "stars": ("*" * 50_000, "<hr>"),
}


@pytest.mark.parametrize("name", PATHOLOGICAL)
async def test_pathological_minutes_are_rendered_once_off_the_loop(
    client: AsyncClient, name: str
) -> None:
    meeting_id = await held_meeting(client)
    body, shown_as = PATHOLOGICAL[name]
    # The page's templates compile once per process; that is not what is measured here.
    assert (await client.get(f"/meetings/{meeting_id}/minutes")).status_code == 200
    saved, saving_gap = await watched(
        post_form(client, f"/meetings/{meeting_id}/minutes", {"body": body, "action": "publish"})
    )
    assert saved.status_code == 303, saved.text
    sign_out(client)
    shown, viewing_gap = await watched(client.get(f"/meetings/{meeting_id}/minutes"))
    assert shown.status_code == 200
    assert shown_as in shown.text
    assert viewing_gap < MAX_GAP, f"an anonymous view stalled the loop {viewing_gap:.2f} s"
    assert saving_gap < MAX_GAP, f"saving stalled the loop {saving_gap:.2f} s"


OPENING_HTML = "<h2>Ouverture</h2>\n<p>La séance est <strong>ouverte</strong>.</p>\n"


async def test_minutes_are_shown_from_the_stored_html_and_old_rows_get_theirs_once(
    client: AsyncClient,
) -> None:
    meeting_id = await held_meeting(client)
    published = await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": "## Ouverture\n\nLa séance est **ouverte**.", "action": "publish"},
    )
    assert published.status_code == 303
    row = await Minutes.select(Minutes.id, Minutes.body_html).first()
    assert row["body_html"] == OPENING_HTML
    # What is stored is what is shown: the Markdown is not parsed again on a view.
    await Minutes.update({Minutes.body_html: "<p>Texte <em>déjà rendu</em></p>"}).where(
        Minutes.id == row["id"]
    )
    assert "Texte <em>déjà rendu</em>" in (await client.get(f"/meetings/{meeting_id}/minutes")).text
    # A version saved before the column existed is rendered at its first view, and kept.
    await Minutes.update({Minutes.body_html: None}).where(Minutes.id == row["id"])
    page = await client.get(f"/meetings/{meeting_id}/minutes")
    assert "La séance est <strong>ouverte</strong>." in page.text
    stored = await Minutes.select(Minutes.body_html).where(Minutes.id == row["id"]).first()
    assert stored["body_html"] == OPENING_HTML


async def test_a_published_minutes_pdf_is_rendered_once_per_language(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting_id = await held_meeting(client)
    await post_form(
        client,
        f"/meetings/{meeting_id}/minutes",
        {"body": "La séance est **ouverte**.", "action": "publish"},
    )
    minutes = await Minutes.select(Minutes.id).first()
    sign_out(client)
    first = await client.get(f"/meetings/{meeting_id}/minutes.pdf?lang=ar")
    assert first.status_code == 200
    assert "ouverte" in pdf_text(first.content)
    rows = await StoredPdf.select(StoredPdf.document, StoredPdf.language)
    assert rows == [{"document": f"minutes:{minutes['id']}", "language": "ar"}]
    async with pool_taken(monkeypatch):  # a rendering now would be refused
        again = await client.get(f"/meetings/{meeting_id}/minutes.pdf?lang=ar")
    assert again.status_code == 200
    assert again.content == first.content


# A full pool


@asynccontextmanager
async def pool_taken(monkeypatch: pytest.MonkeyPatch, seconds: float = 3) -> AsyncIterator[None]:
    """Every slot of the pool busy for a while (a queue of one, one job sleeping in it)."""
    monkeypatch.setenv("VOIX_CPU_QUEUE", "1")
    blocker = asyncio.create_task(workers.run(time.sleep, seconds))
    await asyncio.sleep(0)  # the job takes its slot on its first step
    try:
        yield
    finally:
        await blocker
        monkeypatch.delenv("VOIX_CPU_QUEUE")


async def test_a_full_pool_answers_503_with_retry_after_at_once(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Un banc", latitude=43.329, longitude=5.41)
    meeting_id = await held_meeting(client, world)
    sign_out(client)
    async with pool_taken(monkeypatch):
        for url in (f"/meetings/{meeting_id}/poster.pdf", "/tables/flamants-iris/map"):
            started = time.perf_counter()
            refused = await client.get(url)
            assert refused.status_code == 503, url
            assert refused.headers["retry-after"] == str(workers.RETRY_AFTER_SECONDS)
            assert t(workers.BUSY) in refused.text
            assert time.perf_counter() - started < 1  # refused at once, not queued
    served = await client.get(f"/meetings/{meeting_id}/poster.pdf")  # the slot is back
    assert served.status_code == 200


async def test_a_table_page_drawn_while_the_pool_is_full_still_shows_its_map(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's static map is drawn in a worker (maps.static), but a page is not refused
    for it: with every slot taken, it is drawn in the web process."""
    world = await build_world()
    await add_proposal(world.table_a, "Un banc place Jean-Jaurès", latitude=43.329, longitude=5.41)
    async with pool_taken(monkeypatch):
        page = await client.get("/tables/flamants-iris")
        assert page.status_code == 200
        assert 'class="static-map-figure"' in page.text
        assert "Un banc place Jean-Jaurès" in page.text.split('class="static-map-figure"', 1)[1]


async def test_a_job_whose_requester_left_keeps_its_slot_until_it_ends(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting_id = await held_meeting(client)
    sign_out(client)
    monkeypatch.setenv("VOIX_CPU_QUEUE", "1")
    job = asyncio.create_task(workers.run(time.sleep, 3))
    # Handed to a worker within milliseconds (before that, cancelling drops it, slot and all).
    await asyncio.sleep(0.3)
    job.cancel()  # as when the client disconnects: the process goes on with the job
    with pytest.raises(asyncio.CancelledError):
        await job
    with pytest.raises(workers.Busy):
        await workers.run(int)
    refused = await client.get(f"/meetings/{meeting_id}/poster.pdf")
    assert refused.status_code == 503
    deadline = time.monotonic() + 60
    while (served := await client.get(f"/meetings/{meeting_id}/poster.pdf")).status_code == 503:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.5)
    assert served.status_code == 200  # the slot came back when the job ended


async def test_a_burst_of_documents_is_partly_refused_not_queued_without_bound(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting_id = await held_meeting(client)
    sign_out(client)
    monkeypatch.setenv("VOIX_CPU_QUEUE", "2")
    responses = await asyncio.gather(
        *[client.get(f"/meetings/{meeting_id}/poster.pdf") for _ in range(8)]
    )
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) == {200, 503}, statuses
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 503)
    assert all(r.content.startswith(b"%PDF-") for r in responses if r.status_code == 200)


# The interactive map


async def test_the_loop_keeps_ticking_while_a_map_of_10_000_points_is_built(
    client: AsyncClient,
) -> None:
    world = await build_world()
    # One statement both databases run: row by row through the ORM takes ~15 s on SQLite.
    await Proposal.raw(
        "INSERT INTO proposal"
        ' ("table", title, body, theme, language, status, created_at, latitude, longitude)'
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)"
        " SELECT {}, 'Bench ' || i, 'Texte.', 'housing', 'fr', 'submitted', CURRENT_TIMESTAMP,"
        " 43.325 + (i % 100) * 0.00008, 5.405 + (i / 100) * 0.0001 FROM n",
        world.table_a["id"],
    )
    assert await Proposal.count() == 10_000
    started = time.perf_counter()
    paths = ("/tables/flamants-iris/map", "/map", "/tables/flamants-iris/map/points", "/map/points")
    responses, gap = await watched(asyncio.gather(*(client.get(path) for path in paths)))
    took = time.perf_counter() - started
    for path, response in zip(paths, responses, strict=True):
        assert response.status_code == 200
        # The pages are folium's shell; their points come apart, as JSON.
        assert ("Bench 9999" in response.text) == path.endswith("/points"), path
    assert gap < MAX_GAP, f"the loop stalled {gap:.2f} s during {took:.1f} s of maps"


# The worker processes


WORKERS_OF_A_DYING_APP = """
import asyncio, multiprocessing, os, sys, time
from voix import workers
asyncio.run(workers.run(os.getpid))  # the pool is up and its workers started
print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:\tZ") for line in status)  # zombie: ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_end_with_an_app_that_was_killed() -> None:
    app = subprocess.Popen(
        [sys.executable, "-c", WORKERS_OF_A_DYING_APP],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "VOIX_CPU_WORKERS": "2"},
    )
    try:
        assert app.stdout is not None
        pids = [int(pid) for pid in app.stdout.readline().split()]
        assert len(pids) >= 1, pids
        assert all(running(pid) for pid in pids)
    finally:
        app.kill()  # no shutdown: killed, as by the OOM killer or `docker kill`
        app.wait()
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if running(pid)], "workers outlived the app"
