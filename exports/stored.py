"""Published documents' PDFs: rendered once, in a worker process, then served as stored.

A published brief or minutes version is downloaded many times and rarely changes; rendering it
on every GET is what let a few anonymous visitors keep the CPU busy. Each PDF is stored with a
fingerprint of everything its rendering was given (the data, the language, the templates and
catalogs): the same inputs serve the stored bytes, and anything that does change (a proposal's
status, a tally, a corrected translation) renders a new PDF instead of serving a stale one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from exports.models import StoredPdf
from voix import workers
from voix.i18n import LOCALES_DIR
from voix.settings import PROJECT_ROOT
from voix.web import DOMAINS

# Renderings under way in this process, by key: concurrent first downloads share one.
_rendering: dict[tuple[str, str, str], asyncio.Task[bytes]] = {}


@functools.cache
def _renderer_digest() -> str:
    """What else shapes a PDF besides its data: templates, catalogs, WeasyPrint's version (from
    its installed metadata, the same as `weasyprint.__version__`: this runs in the web process,
    which does not load WeasyPrint)."""
    digest = hashlib.sha256(importlib.metadata.version("weasyprint").encode())
    files = [
        path
        for domain in DOMAINS
        for path in (PROJECT_ROOT / domain / "templates").rglob("*")
        if path.is_file()
    ]
    files += LOCALES_DIR.glob("*/LC_MESSAGES/messages.po")
    for path in sorted(files):
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _canonical(value: Any) -> Any:
    """Plain JSON data, the same for the same content (dict order and types aside)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical(dataclasses.asdict(value))
    if isinstance(value, dict):
        return sorted(([str(key), _canonical(item)] for key, item in value.items()))
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(item) for item in value), key=repr)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):  # a photo: its fingerprint stands for it
        value = f"sha256:{hashlib.sha256(value).hexdigest()}"
    return f"{type(value).__name__}:{value}"  # dates, decimals: their text is their value


def fingerprint(
    render: Callable[..., bytes], *args: Any, data_only: bool = False, **kwargs: Any
) -> str:
    """`data_only`: of the data alone, not of the templates and catalogs — a published
    version's files are made once and kept, whatever later changes to the layout."""
    payload = json.dumps(
        [render.__module__, render.__qualname__, _canonical(args), _canonical(kwargs)],
        ensure_ascii=False,
    )
    prefix = "" if data_only else _renderer_digest()
    return hashlib.sha256(f"{prefix}\0{payload}".encode()).hexdigest()


async def _stored(document: str, language: str, key: str) -> bytes | None:
    row = await (
        StoredPdf.select(StoredPdf.content)
        .where(
            (StoredPdf.document == document)
            & (StoredPdf.language == language)
            & (StoredPdf.fingerprint == key)
        )
        .first()
    )
    return bytes(row["content"]) if row else None


async def _render_and_store(
    document: str,
    language: str,
    key: str,
    *,
    render: Callable[..., bytes],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> bytes:
    content = await workers.run(render, *args, **kwargs)
    inserted = await (
        StoredPdf.insert(
            StoredPdf(
                document=document,
                language=language,
                fingerprint=key,
                content=content,
                sha256=hashlib.sha256(content).hexdigest(),
                created_at=datetime.now(UTC),
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(StoredPdf.id)
    )
    if not inserted:
        # Another process stored it first: serve that copy, so every download is the same file.
        return await _stored(document, language, key) or content
    # Earlier renderings of this document in this language no longer match it.
    await StoredPdf.delete().where(
        (StoredPdf.document == document)
        & (StoredPdf.language == language)
        & (StoredPdf.fingerprint != key)
    )
    return content


async def published_pdf(
    document: str,
    language: str,
    render: Callable[..., bytes],
    *args: Any,
    data_only: bool = False,
    **kwargs: Any,
) -> bytes:
    """`render(*args, **kwargs)`, stored under `document` ("brief:SLUG", "minutes:ID").

    Rendered in the worker pool (Busy when it is full) the first time, served from the database
    afterwards. Concurrent first requests in one process share one rendering; across processes
    the unique key keeps a single stored copy.
    """
    key = fingerprint(render, *args, data_only=data_only, **kwargs)
    stored = await _stored(document, language, key)
    if stored is not None:
        return stored
    task_key = (document, language, key)
    task = _rendering.get(task_key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        # A task, not the request itself, renders: a client that goes away does not waste the
        # rendering for those still waiting.
        task = asyncio.ensure_future(
            _render_and_store(document, language, key, render=render, args=args, kwargs=kwargs)
        )
        _rendering[task_key] = task
        task.add_done_callback(lambda done: _forget(task_key, done))
    return await asyncio.shield(task)


def _forget(task_key: tuple[str, str, str], done: asyncio.Task[bytes]) -> None:
    if _rendering.get(task_key) is done:
        del _rendering[task_key]
    if not done.cancelled():
        done.exception()  # retrieved, so a failure nobody awaited any more is not logged twice


# A version's files: the tagged PDF (PDF/UA), the archival PDF (PDF/A), the editable DOCX.
VARIANTS = ("pdf", "pdfa", "docx")


def _render_version(document: dict[str, Any], lang: str, variant: str, photos: Any) -> bytes:
    """In a worker process: the renderers load there, not in the server's process."""
    if variant == "docx":
        from exports.docx import render_brief_docx  # noqa: PLC0415

        return render_brief_docx(document, lang, photos=photos)
    from exports.pdf import render_brief  # noqa: PLC0415

    return render_brief(document, lang, variant="a" if variant == "pdfa" else "ua", photos=photos)


def version_key(slug: str, number: int, variant: str) -> str:
    return f"brief:{slug}:v{number}:{variant}"


async def version_file(  # noqa: PLR0917 — what makes one file, each once
    slug: str, number: int, document: dict[str, Any], lang: str, variant: str, photos: Any
) -> bytes:
    """A published version's file in one language, made once from what the version froze
    (and the translation of its title and context, which `document` carries): the same
    bytes for every download, `voix export brief` included."""
    return await published_pdf(
        version_key(slug, number, variant),
        lang,
        _render_version,
        document,
        lang,
        variant,
        photos,
        data_only=True,
    )


async def stored_sha256(documents: list[str]) -> dict[tuple[str, str], str]:
    """The SHA-256 of the files already made, by (document, language)."""
    if not documents:
        return {}
    rows = await (
        StoredPdf.select(StoredPdf.document, StoredPdf.language, StoredPdf.sha256)
        .where(StoredPdf.document.is_in(documents))
        .order_by(StoredPdf.created_at)
    )
    return {(row["document"], row["language"]): row["sha256"] for row in rows}
