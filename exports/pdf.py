"""PDF rendering with WeasyPrint, with nothing fetched from outside the project.

WeasyPrint itself, patched, and the fetchers it is given live in exports.pdf_engine, imported
when a document is first laid out (in a worker process, voix.workers), not when the web
process imports this module for its constants and renderers' names: it would add half a
second to every start-up. `LocalAssetsOnly` and `WithPhotos` are still found here.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import math
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import segno
from markupsafe import Markup

from exports.photos import printed_photos
from proposals.themes import THEMES
from voix import i18n
from voix.settings import PROJECT_ROOT
from voix.web import build_environment
from votes import views
from votes.scales import (
    APPROVAL,
    GRADE_COLOURS,
    GRADE_LABELS,
    MAJORITY_JUDGMENT,
    METHOD_LABELS,
    SCALES,
    SEVEN,
)

if TYPE_CHECKING:
    from jinja2 import Environment
    from weasyprint.document import Document
    from weasyprint.urls import URLFetcher

ASSETS = (Path(__file__).parent / "assets").resolve()
# What exports.pdf_engine defines and this module used to: loaded with it on first use.
_FROM_ENGINE = frozenset(
    {"LocalAssetsOnly", "WithPhotos", "_tag_languages", "_right_to_left_lines_laid_out_once"}
)


def __getattr__(name: str) -> Any:
    if name in _FROM_ENGINE:
        from exports import pdf_engine  # noqa: PLC0415 — WeasyPrint, when first needed

        return getattr(pdf_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _decoded(text: str) -> str:
    """Percent-decoded until nothing changes: `%252e%252e` ends as `..` too."""
    while (once := unquote(text)) != text:
        text = once
    return text


def asset_path(url: str) -> Path:
    """The file a file: URL names if it lies inside the assets folder; ValueError otherwise.

    The check is made on the fully decoded path, and only that checked path is then opened:
    checking the URL as written let `assets/%2e%2e/…` (decoded later by urllib) walk out.
    """
    parts = urlsplit(url)
    path = Path(_decoded(parts.path))
    if parts.netloc not in ("", "localhost") or not path.is_absolute():
        raise ValueError(f"Refused outside the brief's assets: {url}")
    resolved = path.resolve()
    if not resolved.is_relative_to(ASSETS):
        raise ValueError(f"Refused outside the brief's assets: {url}")
    return resolved


@functools.cache
def _environment() -> Environment:
    """The documents' Jinja environment, made when a document is first rendered (in a worker
    process): the web process, which imports this module, never needs it."""
    environment = build_environment()
    # Results drawn as static SVG at rendering time, in the document's language.
    environment.globals["vote_chart"] = views.chart
    environment.globals["method_labels"] = METHOD_LABELS
    # A drawing rendered by a template, as an image: an <img> carries the alt text that a
    # tagged PDF's Figure needs, which an inline <svg> only gets from a <title> of its own.
    environment.filters["svg_uri"] = lambda svg: data_uri("image/svg+xml", str(svg).encode())
    return environment


def _html(template: str, lang: str, **context: Any) -> str:
    token = i18n.current_language.set(lang)
    try:
        return _environment().get_template(template).render(lang=i18n.language(lang), **context)
    finally:
        i18n.current_language.reset(token)


PHOTO_SCHEME = "voix-photo"


def _document(html: str, fetcher: URLFetcher | None = None) -> Document:
    """The laid-out pages, to measure before writing (WeasyPrint, patched, loaded on first
    use: exports.pdf_engine)."""
    from exports import pdf_engine  # noqa: PLC0415

    return pdf_engine.document(html, fetcher)


def _pdf(html: str) -> bytes:
    return _document(html).write_pdf()


def _render(template: str, lang: str, **context: Any) -> bytes:
    return _pdf(_html(template, lang, **context))


# A brief's PDF: "ua" to read, tagged for screen readers (PDF/UA-1: PDF 1.7, which every
# reader and validator knows; PDF/UA-2 needs PDF 2.0); "a" to archive (PDF/A-2u: fonts embedded,
# every glyph mapped to Unicode, our SVG charts' transparency allowed, which PDF/A-1 forbids).
# Both are tagged: the archived copy stays as readable as the other.
BRIEF_VARIANTS = {"ua": "pdf/ua-1", "a": "pdf/a-2u"}


def data_uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def brief_context(
    doc: dict[str, Any], photos: dict[int, tuple[str, bytes]] | None = None
) -> dict[str, Any]:
    """What the brief's template needs beside the document (exports.snapshot.localised): the
    photos' addresses (`photos`: those printed_photos kept, which WithPhotos serves), each
    item's vote and option, the vote methods the annex explains, the QR code of the brief's
    page."""
    photos = photos or {}
    votes = {vote["id"]: vote for vote in doc["votes"]}
    options: dict[int, dict[str, Any]] = {}
    for item in doc["items"]:
        vote = votes.get(item["vote"]) if item.get("vote") else None
        for option in vote["options"] if vote else []:
            if option["id"] == item.get("option"):
                options[item["n"]] = option
    return {
        "doc": doc,
        "themes": THEMES,
        "items": {item["n"]: item for item in doc["items"]},
        "votes": votes,
        "options": options,
        "methods": list(dict.fromkeys(vote["method"] for vote in doc["votes"])),
        "photos": {media: f"{PHOTO_SCHEME}:{media}" for media in photos},
        "placed": {item["n"] for item in doc["items"] if item.get("latitude") is not None},
        # brief_map.svg numbers each dot by its place in `brief.items`; the map's points are
        # the items' numbers already: 1, 2, 3… stand in for the items.
        "map_numbers": SimpleNamespace(
            items=[{"id": n} for n in range(1, max(_numbers(doc), default=0) + 1)]
        ),
        "map": _drawable(doc["map"]),
        "organisations": list(
            dict.fromkeys(
                [doc["table"]["organisation_name"]]
                + [s["name"] for s in doc["signatories"] if s["organisation"]]
            )
        ),
        "grade_colours": GRADE_COLOURS,
        "grade_labels": GRADE_LABELS,
        # The grades the majority-judgment votes used, best first: the key to their colours.
        "graded": [
            grade
            for grade in SCALES[SEVEN]
            if any(grade in vote.get("grades", ()) for vote in doc["votes"])
        ],
        "qr": segno.make(doc["url"], error="q").svg_data_uri(scale=4, border=2),
    }


def _numbers(doc: dict[str, Any]) -> set[int]:
    points = (doc["map"] or {}).get("points") or []
    return {item["n"] for item in doc["items"]} | {int(point["id"]) for point in points}


def _drawable(layout: dict[str, Any] | None) -> dict[str, Any] | None:
    """The map as brief_map.svg draws it: the places dots were fanned out from as tuples, as
    maps.svg.layout makes them (a version's JSON turns them into lists, which the template's
    `unique` cannot hash); None when no proposal is placed."""
    if not layout or not layout.get("points"):
        return None
    points = [
        {**point, "at": tuple(point["at"]) if point.get("at") else None}
        for point in layout["points"]
    ]
    return {**layout, "points": points}


def render_brief(
    doc: dict[str, Any],
    lang: str,
    *,
    variant: str = "ua",
    photos: dict[int, tuple[str, bytes]] | None = None,
) -> bytes:
    """A published brief (exports.snapshot.localised for `lang`) as an A4 PDF, tagged.

    `variant`: "ua" (PDF/UA-1) or "a" (PDF/A-2u), see BRIEF_VARIANTS. `photos`: media id →
    (content type, bytes) of the photos the version printed (exports.models.BriefPhoto: at
    their printed size since exports.photos, which those of older versions are brought to)."""
    if variant not in BRIEF_VARIANTS:
        raise ValueError(f"Unknown brief PDF variant: {variant!r}")
    from exports.pdf_engine import WithPhotos  # noqa: PLC0415

    with _collector_paused():
        printed = printed_photos(photos)
        html = _html("exports/pdf/brief.html", lang, **brief_context(doc, printed))
        return _document(html, WithPhotos(printed)).write_pdf(
            pdf_variant=BRIEF_VARIANTS[variant], pdf_tags=True
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while WeasyPrint lays out and writes a brief: the millions
    of boxes, styles and PDF objects it makes, all alive until the end, made it scan them again
    and again, a tenth of a 200-proposal brief's time, to find nothing to free (what the
    rendering leaves is freed by reference counting, all but a few megabytes, collected
    afterwards as usual)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def render_login_card(
    *, name: str, table_name: str, organisation: str, code: str, url: str, lang: str
) -> bytes:
    """A business-card-size login card in the resident's language."""
    qr = segno.make(url, error="q").svg_data_uri(scale=4, border=1)
    return _render(
        "exports/pdf/card.html",
        lang,
        name=name,
        table_name=table_name,
        organisation=organisation,
        code=code,
        qr=qr,
    )


def render_poster(
    meeting: dict[str, Any],
    table: dict[str, Any],
    agenda: list[dict[str, Any]],
    url: str,
    translated: dict[str, dict[str, Any]] | None = None,
) -> bytes:
    """An A4 invitation: one block per language of the meeting, the QR code to its page.

    `translated`: the meeting (title, "agenda") in each language the facilitators translated
    it into. Each language's block gives its title; the agenda is printed in each language it
    reads differently in, once if nobody translated it.
    """
    translated = translated or {}
    languages = meeting["languages"] or [i18n.DEFAULT_LANGUAGE]
    sections = [
        Markup(  # noqa: S704 — rendered by our autoescaping environment
            _html(
                "exports/pdf/poster_section.html",
                code,
                meeting=translated.get(code, meeting),
                original_title=meeting["title"],
                table=table,
            )
        )
        for code in languages
    ]
    agendas: list[tuple[str, list[dict[str, Any]]]] = []
    for code in languages:
        items = translated.get(code, {}).get("agenda", agenda)
        titles = [item["title"] for item in items]
        if titles and all(titles != [i["title"] for i in shown] for _, shown in agendas):
            agendas.append((code, items))
    blocks = [
        Markup(_html("exports/pdf/poster_agenda.html", code, agenda=items))  # noqa: S704 — as above
        for code, items in agendas
    ]
    qr = segno.make(url, error="q").svg_data_uri(scale=6, border=2)
    return _render(
        "exports/pdf/poster.html",
        languages[0],
        meeting=meeting,
        table=table,
        agenda=agenda,
        agendas=blocks,
        sections=sections,
        qr=qr,
        url=url,
    )


# A sign-in sheet's blank lines, for those not on it: as many as fill its last page, and at
# first this many (a blank sheet, printed before the meeting for walk-ins to sign too, has at
# least BLANK_SHEET_LINES lines in all). Never fewer than the least, even to spare a page.
SPARE_BLANK, SPARE_PRESENT = 8, 6
SPARE_LEAST_BLANK, SPARE_LEAST_PRESENT = 4, 2
BLANK_SHEET_LINES = 20
_FITTING_RENDERS = 4  # one to measure, one with the right count; two more if an estimate is off


def _lines_below(page: Any) -> float | None:
    """The bottom of the lowest line of the table on this page; None if it has none."""
    bottoms = [box[3] for name, box in page.anchors.items() if name.startswith("line-")]
    return max(bottoms) if bottoms else None


def _better_spare(sheet: Document, spare: int, lines: int, least: int) -> int:
    """How many blank lines make this sheet's last page full, its closing block (count,
    signatures, note) on it with lines of the table above, never alone.

    Measured on the laid-out sheet (sign_in_sheet.html): each line of the table is anchored
    `line-N`, the row of column names `sheet-head`, the closing block `sheet-end`, the bottom
    of each page's writing area `page-floor`."""
    pages = sheet.pages
    last = pages[-1]
    height = next(  # the last line is always a blank one: the height every blank line takes
        box[3] - box[1] for page in pages if (box := page.anchors.get(f"line-{lines}"))
    )
    end = last.anchors["sheet-end"]
    free = last.anchors["page-floor"][1] - end[3]
    if len(pages) == 1 or _lines_below(last) is not None:
        return spare + int(free // height)  # as many as fit above the closing
    # The closing alone on a page of its own: back onto the page before, a few lines fewer…
    before = pages[-2]
    lowest = _lines_below(before)
    room_before = before.anchors["page-floor"][1] - (lowest if lowest is not None else 0)
    fewer = spare - math.ceil(((end[3] - end[1]) - room_before) / height)
    if fewer >= least:
        return fewer
    # …or, when that would leave too few, that page filled with blank lines above it (under
    # the column names, repeated at the top of each page).
    head = pages[0].anchors["sheet-head"]
    below_head = free - (head[3] - head[1])
    return spare + int(max(room_before, 0) // height) + max(1, int(below_head // height))


def render_sign_in_sheet(
    meeting: dict[str, Any],
    table: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    blank: bool,
    lang: str,
) -> bytes:
    """The attendance list with a signature column; blank, it lists the members to sign.

    As many blank lines follow as fill its last page: no page holding only the signatures,
    nor a handful of lines."""
    spare = max(SPARE_BLANK, BLANK_SHEET_LINES - len(rows)) if blank else SPARE_PRESENT
    least = SPARE_LEAST_BLANK if blank else SPARE_LEAST_PRESENT
    html = functools.partial(
        _html,
        "exports/pdf/sign_in_sheet.html",
        lang,
        meeting=meeting,
        table=table,
        rows=rows,
        blank=blank,
    )
    sheet = _document(html(spare=spare))
    for _ in range(_FITTING_RENDERS - 1):
        better = _better_spare(sheet, spare, len(rows) + spare, least)
        if better == spare:
            break
        spare = better
        sheet = _document(html(spare=spare))
    return sheet.write_pdf()


def render_minutes(
    meeting: dict[str, Any],
    table: dict[str, Any],
    *,
    minutes: dict[str, Any],
    html: Markup,
    links: dict[str, list[dict[str, Any]]],
    present: int,
    lang: str,
    translated_from: str = "",
) -> bytes:
    """`translated_from`: the language of the original, when `html` is the facilitators'
    translation (said so on the document)."""
    return _render(
        "exports/pdf/minutes.html",
        lang,
        meeting=meeting,
        table=table,
        minutes=minutes,
        html=html,
        links=links,
        present=present,
        translated_from=translated_from,
    )


# Paper ballots: how many fit on one A4 sheet, by size of ballot.
PAPER_SIZES = {"a5": 2, "a6": 4}
# The most proposals a ballot of each size holds legibly, by method; beyond, each ballot gets
# an A4 page of its own (and more if it needs them), so no proposal is ever cut off.
_PAPER_CAPACITY = {
    "a6": {MAJORITY_JUDGMENT: 4, APPROVAL: 8},
    "a5": {MAJORITY_JUDGMENT: 9, APPROVAL: 16},
}
_SYMBOL = re.compile(r'<symbol id="theme-(\w+)" ([^>]*)>(.*?)</symbol>', re.S)


@functools.cache
def theme_pictograms() -> dict[str, str]:
    """Each theme's pictogram as a standalone inline SVG (from voix/static/themes.svg):
    WeasyPrint draws it without fetching anything."""
    text = (PROJECT_ROOT / "voix" / "static" / "themes.svg").read_text(encoding="utf-8")
    ink = 'stroke="#1d2230"'  # printed in black: WeasyPrint's SVG has no currentColor here
    return {
        slug: f'<svg xmlns="http://www.w3.org/2000/svg" class="pictogram" {attributes}>{body}</svg>'.replace(
            'stroke="currentColor"', ink
        )
        for slug, attributes, body in _SYMBOL.findall(text)
    }


def paper_layout(vote: dict[str, Any], size: str) -> str:
    """`a5` or `a6` when a ballot of this vote fits that size, `a4` (one per page) otherwise."""
    shown = sum(1 for option in vote["options"] if not option["withdrawn"])
    capacity = _PAPER_CAPACITY[size].get(vote["method"])
    return size if capacity is None or shown <= capacity else "a4"


def render_paper_ballots(
    vote: dict[str, Any], table: dict[str, Any], *, copies: int, size: str, lang: str
) -> bytes:
    """`copies` blank ballots of an open vote, cut from A4 sheets: no name, no receipt."""
    layout = paper_layout(vote, size)
    per_sheet = PAPER_SIZES.get(layout, 1)
    options = [option for option in vote["options"] if not option["withdrawn"]]
    pictograms = {
        slug: Markup(svg)  # noqa: S704 — our own file, read above, never user text
        for slug, svg in theme_pictograms().items()
    }
    return _render(
        "exports/pdf/paper_ballot.html",
        lang,
        vote=vote,
        options=options,
        table=table,
        layout=layout,
        sheets=[
            range(sheet * per_sheet, min(copies, (sheet + 1) * per_sheet))
            for sheet in range(math.ceil(copies / per_sheet))
        ],
        pictograms=pictograms,
    )
