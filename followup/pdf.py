"""The follow-up on paper: the A3 poster for the wall of the centre social, and the reminder
letter to an institution that has not answered. Rendered in worker processes (voix.workers),
with the briefs' fonts and nothing fetched from outside (exports.pdf)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import segno
from markupsafe import Markup

from exports.pdf import _document, _html, _pdf, theme_pictograms
from proposals.themes import THEMES

if TYPE_CHECKING:
    from weasyprint.document import Document

_FITTING_RENDERS = 4


def _laid_out(html: str) -> Document:
    """Laid out by WeasyPrint, loaded when first needed (exports.pdf_engine), with the briefs'
    assets only."""
    return _document(html)


def render_poster(
    *, table: dict[str, Any], follow_up: dict[str, Any], url: str, lang: str
) -> bytes:
    """One A3 page: the counts in large type, the latest proposals sent and what came back,
    the QR code to the follow-up page for the rest.

    Rows are bounded, but ten long titles with long answers in Arabic script can still need
    more than a sheet: then the rows the first page did not hold go into "and N more", measured
    on the laid-out poster (each row is anchored `row-N`), and it is laid out again."""
    qr = segno.make(url, error="q").svg_data_uri(scale=8, border=2)
    pictograms = {
        slug: Markup(svg)  # noqa: S704 — our own file (voix/static/themes.svg), never user text
        for slug, svg in theme_pictograms().items()
    }
    rows: list[dict[str, Any]] = follow_up["rows"]
    shown = len(rows)

    def lay_out(count: int) -> Document:
        return _laid_out(
            _html(
                "followup/pdf/poster.html",
                lang,
                table=table,
                counts=follow_up["counts"],
                rows=rows[:count],
                more=follow_up["more"] + len(rows) - count,
                today=follow_up["today"],
                themes=THEMES,
                pictograms=pictograms,
                qr=qr,
                url=url,
            )
        )

    poster = lay_out(shown)
    for _ in range(_FITTING_RENDERS - 1):
        if len(poster.pages) == 1 or shown == 0:
            break
        on_first = sum(1 for name in poster.pages[0].anchors if name.startswith("row-"))
        # The rows the first page held (then one fewer, if "and N more" does not fit below).
        shown = max(0, min(shown - 1, on_first))
        poster = lay_out(shown)
    return poster.write_pdf()


def render_reminder(
    *,
    table: dict[str, Any],
    brief: dict[str, Any],
    institution: dict[str, Any],
    proposals: list[dict[str, Any]],
    due_on: date,
    today: date,
    url: str,
    lang: str,
) -> bytes:
    """A dated, formal letter from the table to the institution, recalling what it was sent."""
    return _pdf(
        _html(
            "followup/pdf/reminder.html",
            lang,
            table=table,
            brief=brief,
            institution=institution,
            proposals=proposals,
            due_on=due_on,
            today=today,
            url=url,
        )
    )
