"""Start-up loads what serving needs, and the heavy renderers only where they run.

WeasyPrint, folium, python-docx and PyAV take most of a second to import, and only worker
processes use them (voix.workers): the web process must not import them to answer its first
request. Each check runs in a fresh interpreter, since this one has imported everything the
other tests use. How long start-up takes is measured by bench/startup.py, not here.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from voix import workers
from voix.settings import PROJECT_ROOT

# Imported by the worker processes only; the web process imports them when it first needs
# them, never at start-up.
HEAVY = (
    "weasyprint",  # exports.pdf_engine
    "folium",  # maps.interactive
    "docx",  # exports.docx
    "av",  # proposals.media (voice notes)
    "icalendar",  # meetings.calendar (the calendar feed)
    "black",  # Piccolo's migration commands (voix.db.migrate)
    "shapely",  # maps.services, with numpy: imported after start-up (workers.IMPORT_LATER)
    "numpy",
    "pydantic",  # Litestar's default plugins for it: no handler uses it (voix.app.App)
)


def _in_a_fresh_interpreter(code: str) -> dict[str, object]:
    """Runs `code` (which sets `result`) in a new interpreter from the project's root, with
    this test session's settings; returns `result`, sent back as JSON."""
    program = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(result))\n"
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_app_starts_without_the_heavy_renderers() -> None:
    """Importing the app and building it, as `voix serve` does, imports none of HEAVY."""
    result = _in_a_fresh_interpreter(
        f"""
        import sys
        from voix.app import create_app
        create_app()
        result = {{"loaded": [name for name in {HEAVY!r} if name in sys.modules]}}
        """
    )
    assert result["loaded"] == []


def test_serving_pages_loads_none_of_them() -> None:
    """Nor does serving: the app started (its lifespan), /health and the home page read from
    the database, whose tables find their engine without Piccolo's finder (which imports
    black and the migration machinery, voix.db._find_engine)."""
    result = _in_a_fresh_interpreter(
        f"""
        import sys
        from litestar.testing import TestClient
        from voix.app import create_app
        with TestClient(create_app()) as client:
            statuses = [client.get(path).status_code for path in ("/health", "/?lang=fr")]
        result = {{
            "statuses": statuses,
            "loaded": [name for name in {HEAVY!r} if name in sys.modules],
            "finder": "piccolo.conf.apps" in sys.modules,
        }}
        """
    )
    assert result == {"statuses": [200, 200], "loaded": [], "finder": False}


def test_the_served_app_freezes_what_start_up_made() -> None:
    """voix.asgi, which `voix serve` runs: no garbage collection while it imports and starts
    the app (a full pass over start-up's objects took 0.1-0.3 s), then what start-up made is
    frozen, out of the collector's full passes (90-150 ms each under load), and the collector
    is on again for what requests make."""
    result = _in_a_fresh_interpreter(
        """
        import gc
        import voix.asgi
        during_import = gc.isenabled()
        from litestar.testing import TestClient
        app = voix.asgi.create_app()
        before_start = gc.isenabled()
        with TestClient(app) as client:
            status = client.get("/health").status_code
            result = {
                "during_import": during_import,
                "before_start": before_start,
                "serving": gc.isenabled(),
                "frozen": gc.get_freeze_count(),
                "status": status,
            }
        """
    )
    assert result["status"] == 200
    assert (result["during_import"], result["before_start"], result["serving"]) == (
        False,
        False,
        True,
    )
    assert result["frozen"] > 50_000, result  # ~150,000 on the 2-core machine


def test_the_workers_freeze_what_they_preloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU worker preloads with the collector off, then freezes what it loaded and collects
    what its jobs make."""
    monkeypatch.setattr(workers, "PRELOAD", ("json",))
    monkeypatch.setenv("VOIX_CPU_WORKERS", "1")
    workers.shutdown()
    try:
        assert asyncio.run(workers.run(gc.isenabled)) is True
        assert asyncio.run(workers.run(gc.get_freeze_count)) > 1_000
    finally:
        workers.shutdown()


def test_weasyprint_is_patched_before_the_first_document() -> None:
    """The first document laid out in a process gets WeasyPrint patched (right-to-left lines
    laid out once, languages tagged), however it is reached: exports.pdf or followup.pdf."""
    for renderer in ("exports.pdf", "followup.pdf"):
        result = _in_a_fresh_interpreter(
            f"""
            import sys
            import {renderer}
            before = "weasyprint" in sys.modules
            from exports import pdf
            pages = pdf._document('<html lang="ar" dir="rtl"><p>نص</p></html>').pages
            from weasyprint.layout import inline
            from weasyprint.pdf import tags
            result = {{
                "before": before,
                "pages": len(pages),
                "lines": getattr(inline.avoid_collisions, "line_start", False),
                "languages": getattr(tags._build_box_tree, "with_languages", False),
            }}
            """
        )
        assert result == {"before": False, "pages": 1, "lines": True, "languages": True}, renderer


def test_the_fetchers_are_still_found_where_they_were() -> None:
    """exports.pdf's names moved to exports.pdf_engine are still exports.pdf's (loading it)."""
    from exports import pdf, pdf_engine

    assert pdf.LocalAssetsOnly is pdf_engine.LocalAssetsOnly
    assert pdf.WithPhotos is pdf_engine.WithPhotos
    with pytest.raises(AttributeError):
        pdf.NoSuchName  # noqa: B018


def test_what_the_workers_preload_exists() -> None:
    """A module renamed or moved would only be logged by each worker, never fail: so here."""
    result = _in_a_fresh_interpreter(
        f"""
        import importlib
        for name in {workers.PRELOAD!r}:
            importlib.import_module(name)
        result = {{"ok": True}}
        """
    )
    assert result == {"ok": True}


SLOW_MODULE = """
import os
import time
from pathlib import Path

HERE = Path(__file__).parent
(HERE / f"importing-{os.getpid()}").touch()
while not (HERE / "go").exists():  # a preload that lasts until the test lets it end
    time.sleep(0.01)
"""


def test_warm_up_returns_while_the_workers_are_still_preloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """warm_up (at the app's start-up) only starts the workers: their imports run in the
    background, so /health answers without waiting for WeasyPrint and folium to load."""
    (tmp_path / "voix_slow_preload.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers get this process's sys.path
    monkeypatch.setattr(workers, "PRELOAD", ("voix_slow_preload",))
    monkeypatch.setenv("VOIX_CPU_WORKERS", "1")
    workers.shutdown()
    try:
        warming = threading.Thread(target=workers.warm_up, daemon=True)
        warming.start()
        warming.join(timeout=120)  # a guard against a hang, not a measure
        assert not warming.is_alive(), "warm_up waited for the workers' preload"
        # The worker is importing, and cannot finish before "go": warm_up returned before.
        while not list(tmp_path.glob("importing-*")):
            time.sleep(0.05)
        (tmp_path / "go").touch()
        assert asyncio.run(workers.run(_preloaded)), "the worker did not preload PRELOAD"
    finally:
        (tmp_path / "go").touch()
        workers.shutdown()


def test_a_stop_does_not_wait_for_the_workers_preload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped soon after it started, the app does not wait for its idle workers to finish
    importing WeasyPrint and folium: they are stopped (a running job is still waited for)."""
    (tmp_path / "voix_slow_preload.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(workers, "PRELOAD", ("voix_slow_preload",))
    monkeypatch.setenv("VOIX_CPU_WORKERS", "1")
    workers.shutdown()
    try:
        workers.warm_up()
        while not list(tmp_path.glob("importing-*")):
            time.sleep(0.05)
        stopping = threading.Thread(target=workers.shutdown, daemon=True)
        stopping.start()
        stopping.join(timeout=120)  # a guard against a hang, not a measure
        assert not stopping.is_alive(), "shutdown waited for the workers' preload"
    finally:
        (tmp_path / "go").touch()
        workers.shutdown()


def _preloaded() -> bool:
    return "voix_slow_preload" in sys.modules
