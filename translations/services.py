"""Showing what the table wrote in the reader's language, and the facilitators' work list.

A page asks `showing(kind, ids, reader)` once for all the objects it lists, and gets one `Shown`
per object: the text to show for each field, in which language, and whether to say "not yet
translated" or "translated from …". Queries per page do not grow with the objects shown.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audit import services as audit
from meetings.services import MINUTES_MAX, minutes_html
from tables.services import scope_of
from translations import kinds
from translations.kinds import KINDS, Original
from translations.models import ContentOrigin, ContentRead, ContentTranslation
from voix import db, workers
from voix.forms import Form
from voix.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, RTL_LANGUAGES, current_language, direction
from voix.permissions import Principal, require
from voix.richtext import brief_context_html

SAME = "same"  # the reader reads the original's language
TRANSLATED = "translated"
UNTRANSLATED = "untranslated"  # no translation into the reader's language yet
ORIGINAL = "original"  # a translation exists; the reader asked for the original


@dataclass
class Shown:
    reader: str
    language: str  # the original's
    translation: dict[str, str] = field(default_factory=dict)
    stale: bool = False  # the original changed after it was translated
    asked_original: bool = False
    partial: bool = False  # some fields are still shown as written

    @property
    def state(self) -> str:
        if self.language == self.reader:
            return SAME
        if not self.translation:
            return UNTRANSLATED
        return ORIGINAL if self.asked_original else TRANSLATED

    def _translated(self, key: str) -> bool:
        return self.state == TRANSLATED and bool(self.translation.get(key, "").strip())

    def text(self, key: str, original: str) -> str:
        return self.translation[key] if self._translated(key) else original

    def lang(self, key: str) -> str:
        return self.reader if self._translated(key) else self.language


def _arabic_script(text: str) -> bool:
    return direction(text) == "rtl"


def needs_translation(text: str, into: str, origin: str) -> bool:
    """Whether one part needs translating into `into`: not when it is already written in that
    language's script while the rest is in the other one (a French item on an Arabic agenda)."""
    if not text.strip():
        return False
    same_as_target = _arabic_script(text) == (into in RTL_LANGUAGES)
    other_than_origin = _arabic_script(text) != (origin in RTL_LANGUAGES)
    return not (same_as_target and other_than_origin)


def may_be_written_in(original: Original, language: str) -> bool:
    """A correction of the original's language must agree with its script.

    Arabic script is Arabic; Latin script is French or English. So no "translation" can stand
    in for the original in the very language it was written in.
    """
    return (guess_language(original) == "ar") == (language in RTL_LANGUAGES)


def guess_language(original: Original) -> str:
    """Arabic script says Arabic; otherwise the site's first language, until corrected."""
    for text in original.fields.values():
        if any(ch.isalpha() for ch in text):
            return "ar" if direction(text) == "rtl" else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


async def _origins(kind: str, ids: list[int]) -> dict[int, str]:
    rows = await ContentOrigin.select(ContentOrigin.object_id, ContentOrigin.language).where(
        (ContentOrigin.kind == kind) & ContentOrigin.object_id.is_in(ids)
    )
    return {row["object_id"]: row["language"] for row in rows}


def language_of(original: Original, origins: dict[int, str]) -> str:
    return origins.get(original.id) or guess_language(original)


async def _stored(
    kind: str, ids: list[int], reader: str
) -> tuple[dict[int, str], dict[int, dict[str, Any]]]:
    """The corrected origins of these objects and their translations into `reader`: one query."""
    marks = ", ".join("{}" for _ in ids)
    rows = await ContentTranslation.raw(
        "SELECT object_id, language, NULL AS fields, NULL AS source, 'origin' AS what "  # noqa: S608 — only placeholders are formatted in
        f"FROM content_origin WHERE kind = {{}} AND object_id IN ({marks}) "
        "UNION ALL "
        "SELECT object_id, language, fields, source, 'translation' AS what "
        f"FROM content_translation WHERE kind = {{}} AND language = {{}} AND object_id IN ({marks})",
        kind,
        *ids,
        kind,
        reader,
        *ids,
    )
    origins = {row["object_id"]: row["language"] for row in rows if row["what"] == "origin"}
    translated = {row["object_id"]: row for row in rows if row["what"] == "translation"}
    return origins, translated


async def showing(
    kind: str,
    ids: list[int],
    reader: str,
    *,
    original: bool = False,
    count: bool = False,
    only_translated: bool = False,
) -> dict[int, Shown]:
    """How to show each of these objects to a reader of `reader` (ids not found are left out).

    `count`: this is the object's own page, read once more in the reader's language.
    `only_translated`: a list that only swaps texts and says nothing of the others, so objects
    without a translation are not read again (most lists have none: one query in all).
    """
    ids = sorted(set(ids))
    if not ids:
        return {}
    origins, translated = await _stored(kind, ids, reader)
    if only_translated:
        ids = sorted(translated)
        if not ids:
            return {}
    found = await kinds.originals(kind, ids)
    result = {}
    for object_id, item in found.items():
        row = translated.get(object_id)
        language = language_of(item, origins)
        fields = json.loads(row["fields"]) if row else {}
        result[object_id] = Shown(
            reader=reader,
            language=language,
            translation=fields if language != reader else {},
            stale=row is not None and row["source"] != item.fingerprint,
            asked_original=original,
            partial=row is not None and missing(item, fields, reader, language) > 0,
        )
        if count and language != reader:
            note_read(kind, object_id, reader)
    if count:
        await flush_reads(when_due=True)
    return result


def missing(original: Original, translation: dict[str, str], into: str, origin: str) -> int:
    """How many of the original's fields needing it the translation leaves as written."""
    return sum(
        1
        for key, text in original.fields.items()
        if needs_translation(text, into, origin) and not translation.get(key, "").strip()
    )


# Reads are counted in memory and written in one statement per object every half-minute: the
# order of a to-do list does not need a write on every page view. A crash loses at most that.
FLUSH_EVERY = 30.0


class _Reads:
    def __init__(self) -> None:
        self.pending: Counter[tuple[str, int, str]] = Counter()
        self.flushed_at = time.monotonic()


_reads = _Reads()


def forget_reads() -> None:
    """Drops the reads not yet written (tests: the next test's objects have the same ids)."""
    _reads.pending.clear()


def note_read(kind: str, object_id: int, language: str) -> None:
    _reads.pending[(kind, object_id, language)] += 1


async def flush_reads(*, when_due: bool = False) -> None:
    if when_due and time.monotonic() - _reads.flushed_at < FLUSH_EVERY:
        return
    _reads.flushed_at = time.monotonic()
    pending = dict(_reads.pending)
    _reads.pending.clear()
    async with db.best_effort():  # counters: a read-only database loses them, not the page
        for (kind, object_id, language), reads in pending.items():
            await ContentRead.raw(
                "INSERT INTO content_read (kind, object_id, language, reads) VALUES ({}, {}, {}, {}) "
                "ON CONFLICT (kind, object_id, language) "
                "DO UPDATE SET reads = content_read.reads + excluded.reads",
                kind,
                object_id,
                language,
                reads,
            )


# The facilitators' side.

SAME_AS_ORIGINAL = N_("This is the language the text was written in; choose another one.")
NOT_THE_SCRIPT = N_("The original is not written in this language's script.")
ORIGIN_SETTLED = N_(
    "This vote is closed: the language its text was written in can no longer change."
)
ALREADY_IN_THAT_SCRIPT = N_("This part is already written in this language's script.")
NOTHING_TYPED = N_("Type the translation of at least one field.")


@dataclass
class ToDo:
    original: Original
    language: str  # the original's
    reads: int
    stale: bool
    left: int  # fields not translated yet
    label: str = ""
    started: bool = False  # a translation exists (partly done, or older than its original)


async def to_translate(table_id: int, into: str) -> list[ToDo]:
    """What this table wrote that readers of `into` cannot read yet, most read first.

    A translation older than its original is listed again. Each kind is read in one batch.
    """
    todo: list[ToDo] = []
    for kind in KINDS.values():
        ids = await kind.of_table(table_id)
        if not ids:
            continue
        found = await kinds.originals(kind.name, ids)
        origins = await _origins(kind.name, list(found))
        rows = await ContentTranslation.select(
            ContentTranslation.object_id, ContentTranslation.source, ContentTranslation.fields
        ).where(
            (ContentTranslation.kind == kind.name)
            & (ContentTranslation.language == into)
            & ContentTranslation.object_id.is_in(list(found))
        )
        done = {row["object_id"]: row for row in rows}
        reads = {
            row["object_id"]: row["reads"]
            for row in await ContentRead.select(ContentRead.object_id, ContentRead.reads).where(
                (ContentRead.kind == kind.name)
                & (ContentRead.language == into)
                & ContentRead.object_id.is_in(list(found))
            )
        }
        for object_id, item in found.items():
            language = language_of(item, origins)
            if language == into:
                continue
            row = done.get(object_id)
            stale = row is not None and row["source"] != item.fingerprint
            left = missing(item, json.loads(row["fields"]) if row else {}, into, language)
            if not left and not stale:
                continue
            todo.append(
                ToDo(
                    item,
                    language,
                    reads.get(object_id, 0),
                    stale,
                    left,
                    kind.label,
                    started=row is not None,
                )
            )
    todo.sort(key=lambda t: (-t.reads, t.original.kind, -t.original.id))
    return todo


async def get_original(kind: str, object_id: int) -> Original | None:
    if kind not in KINDS:
        return None
    return (await kinds.originals(kind, [object_id])).get(object_id)


async def current(kind: str, object_id: int, language: str) -> dict[str, Any] | None:
    return (
        await ContentTranslation.select(
            ContentTranslation.fields,
            ContentTranslation.source,
            ContentTranslation.updated_at,
            ContentTranslation.translated_by.display_name.as_alias("translated_by_name"),
        )
        .where(
            (ContentTranslation.kind == kind)
            & (ContentTranslation.object_id == object_id)
            & (ContentTranslation.language == language)
        )
        .first()
    )


async def origin_of(original: Original) -> str:
    return language_of(original, await _origins(original.kind, [original.id]))


MAX_LENGTHS = {"body": MINUTES_MAX, "context": 8000}


async def save(
    who: Principal,
    table: dict[str, Any],
    original: Original,
    data: dict[str, Any],
) -> None:
    """Saves the translation of every field typed; an empty field shows the original there.

    Markdown fields are made into sanitised HTML once, here, in a worker process, and kept
    beside the text as "KEY:html". Also records the original's language when the facilitator corrects it.
    """
    require(who, "content.translate", scope_of(table))
    form = Form(data)
    language = form.choice("language", LANGUAGES)
    written_in = form.choice("written_in", LANGUAGES)
    current_origin = await origin_of(original)
    fields = {}
    for key, written in original.fields.items():
        limit = MAX_LENGTHS.get(key, 200)
        text = form.text(
            f"field-{key}", max_length=limit, multiline=key in original.multiline, required=False
        )
        if (
            text
            and language
            and written_in
            and not needs_translation(written, language, written_in)
        ):
            form.error(f"field-{key}", ALREADY_IN_THAT_SCRIPT)
        elif text:
            fields[key] = text
    if written_in and not may_be_written_in(original, written_in):
        form.error("written_in", NOT_THE_SCRIPT)
    elif written_in and written_in != current_origin and original.closed:
        form.error("written_in", ORIGIN_SETTLED)
    elif language and written_in and language == written_in:
        form.error("language", SAME_AS_ORIGINAL)
    if not fields and not form.errors:
        form.error("field-" + next(iter(original.fields)), NOTHING_TYPED)
    form.validate()
    # A brief's context has headings of its own levels; minutes, theirs.
    render = brief_context_html if original.kind == "brief" else minutes_html
    for key in original.markdown & fields.keys():
        fields[f"{key}:html"] = await workers.run(render, fields[key])
    # Upserts: two facilitators saving at once (or a double click) both succeed, the last wins.
    async with db.write_transaction():
        if written_in != guess_language(original):
            await ContentOrigin.raw(
                "INSERT INTO content_origin (kind, object_id, language) VALUES ({}, {}, {}) "
                "ON CONFLICT (kind, object_id) DO UPDATE SET language = excluded.language",
                original.kind,
                original.id,
                written_in,
            )
        else:
            await ContentOrigin.delete().where(
                (ContentOrigin.kind == original.kind) & (ContentOrigin.object_id == original.id)
            )
        await ContentTranslation.raw(
            'INSERT INTO content_translation ("table", kind, object_id, language, fields, source, '
            "translated_by, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}) "
            "ON CONFLICT (kind, object_id, language) DO UPDATE SET fields = excluded.fields, "
            "source = excluded.source, translated_by = excluded.translated_by, "
            "updated_at = excluded.updated_at",
            table["id"],
            original.kind,
            original.id,
            language,
            kinds.as_json(fields),
            original.fingerprint,
            who.user_id,
            datetime.now(UTC),
        )
        await audit.record(
            who,
            "content.translated",
            scope_of(table),
            subject=f"{original.kind}:{original.id}",
            language=language,
            written_in=written_in,
            fields=sorted(k for k in fields if ":" not in k),
        )


# Pages put the reader's text into the rows they already have, so that every template showing
# a question, an answer, a title or an agenda item shows the translation without knowing of it.

_LISTS = {"option": "options", "item": "agenda"}


def _put(row: dict[str, Any], key: str, text: str, html: str | None) -> None:
    if ":" in key:
        prefix, raw_id = key.split(":", 1)
        name = "label" if prefix == "option" else "title"
        for child in row.get(_LISTS.get(prefix, "")) or ():
            # A withdrawn answer or an agenda item hidden by moderation shows nothing of its
            # text: its translation neither.
            shows_text = isinstance(child.get(name), str) and not child.get("withdrawn")
            if str(child.get("id")) == raw_id and shows_text:
                child[name] = text
        return
    if html is not None:
        row[f"{key}_html"] = html
    row[key] = text


async def apply(
    kind: str,
    rows: list[dict[str, Any]],
    reader: str,
    *,
    original: bool = False,
    count: bool = False,
    key: str = "id",
) -> dict[int, Shown]:
    """Puts the translation into `reader` into each row (by `key`), and says what was done.

    A vote's options are `row["options"]`, a meeting's agenda `row["agenda"]`; a Markdown
    field's rendered HTML goes to "FIELD_html".
    """
    shown = await showing(
        kind,
        [row[key] for row in rows],
        reader,
        original=original,
        count=count,
        only_translated=not count,
    )
    for row in rows:
        state = shown.get(row[key])
        if state is None or state.state != TRANSLATED:
            continue
        for field_key, text in state.translation.items():
            if ":html" in field_key or not text.strip():
                continue
            _put(row, field_key, text, state.translation.get(f"{field_key}:html"))
    return shown


async def apply_all(
    kind: str, rows: list[dict[str, Any]], reader: str, **options: Any
) -> list[dict[str, Any]]:
    """`apply`, for a page that only needs the rows back."""
    await apply(kind, rows, reader, **options)
    return rows


async def on_its_page(
    kind: str, row: dict[str, Any], query: Mapping[str, Any], key: str = "id"
) -> Shown | None:
    """An object's own page: in its reader's language, counted as read once more in it, and as
    written when the reader asks for the original (?original=1)."""
    reader = current_language.get()
    asked = query.get("original") == "1"
    return (await apply(kind, [row], reader, original=asked, count=True, key=key)).get(row[key])
