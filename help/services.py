"""The legal pages each organisation words for itself: reading the versions shown, saving one.

A legal page is the same for every organisation until its coordinators write their own text,
in Markdown, per language. Each save is a new version (never changed afterwards), rendered and
sanitised once, in the worker pool, and recorded in the organisation's journal. An empty text
gives the page back its default wording, which comes from the catalogs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from babel.lists import format_list
from litestar.exceptions import NotFoundException
from markupsafe import Markup

from audit import services as audit
from help.content import LEGAL_KINDS
from help.models import LegalText
from tables.models import Organisation, Table
from tables.services import organisation_scope
from voix import db, workers
from voix.db import utc
from voix.forms import Form
from voix.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, RTL_LANGUAGES, current_language
from voix.permissions import Principal, require
from voix.richtext import markdown_html

BODY_MAX = 30_000
# What the journal calls a save (audit/controllers.py ACTIONS shows it under this label).
AUDIT_ACTION = "legal.updated"
AUDIT_LABEL = N_("Legal page changed")

# The page has its h1 and each organisation its h2, so the text's headings start at h3.
_HEADINGS = {1: 3, 2: 3, 3: 4, 4: 4, 5: 4, 6: 4}
_URL_SCHEMES = frozenset({"https", "http", "mailto", "tel"})


def legal_html(body: str) -> str:
    """Markdown to HTML that can be shown as it is (voix.richtext), headings from h3.

    CPU work: it runs in the worker pool, once, when a version is saved.
    """
    return markdown_html(body, headings=_HEADINGS, url_schemes=_URL_SCHEMES)


def kind_or_404(kind: str) -> str:
    if kind not in LEGAL_KINDS:
        raise NotFoundException()
    return kind


async def organisations() -> list[dict[str, Any]]:
    """Every organisation with the names of the tables it runs (also as a list in words, in
    the reader's language: "A, B et C", "A، B و C")."""
    rows = await Organisation.select(
        Organisation.id, Organisation.slug, Organisation.name
    ).order_by(Organisation.name)
    tables = await Table.select(Table.organisation, Table.name).order_by(Table.name)
    for row in rows:
        row["tables"] = [t["name"] for t in tables if t["organisation"] == row["id"]]
        row["tables_list"] = (
            format_list(row["tables"], locale=current_language.get()) if row["tables"] else "—"
        )
    return rows


async def _latest(kind: str, organisation_ids: list[int]) -> dict[tuple[int, str], dict[str, Any]]:
    """The newest version of each (organisation, language) of this kind of page."""
    if not organisation_ids:
        return {}
    rows = await (
        LegalText.select(
            LegalText.id,
            LegalText.organisation,
            LegalText.language,
            LegalText.version,
            LegalText.body,
            LegalText.body_html,
            LegalText.updated_at,
            LegalText.updated_by.display_name.as_alias("author_name"),
        )
        .where((LegalText.kind == kind) & LegalText.organisation.is_in(organisation_ids))
        .order_by(LegalText.version)
    )
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:  # in version order: the last one of each language wins
        row["updated_at"] = utc(row["updated_at"])
        latest[(row["organisation"], row["language"])] = row
    return latest


def _fallbacks(language: str) -> list[str]:
    """The reader's language, then French (the product's), then the others."""
    return list(dict.fromkeys([language, DEFAULT_LANGUAGE, *LANGUAGES]))


async def page_sections(kind: str, language: str) -> list[dict[str, Any]]:
    """One section per organisation: its own text (in the reader's language if it has one,
    else in another, said so), or None where its coordinators have written none: the page
    shows the default wording, translated."""
    kind_or_404(kind)
    found = await organisations()
    latest = await _latest(kind, [o["id"] for o in found])
    sections = []
    for organisation in found:
        own = None
        for code in _fallbacks(language):
            text = latest.get((organisation["id"], code))
            if text and text["body"]:
                own = {
                    **text,
                    "html": Markup(text["body_html"]),  # noqa: S704 — sanitised by nh3 when saved
                    "direction": "rtl" if code in RTL_LANGUAGES else "ltr",
                }
                break
        sections.append({"organisation": organisation, "text": own})
    return sections


async def editor(organisation: dict[str, Any], kind: str, language: str) -> dict[str, Any]:
    """What the edit page shows for one language: the current text and every version."""
    rows = await (
        LegalText.select(
            LegalText.version,
            LegalText.body,
            LegalText.updated_at,
            LegalText.updated_by.display_name.as_alias("author_name"),
        )
        .where(
            (LegalText.organisation == organisation["id"])
            & (LegalText.kind == kind)
            & (LegalText.language == language)
        )
        .order_by(LegalText.version, ascending=False)
    )
    for row in rows:
        row["updated_at"] = utc(row["updated_at"])
    return {"current": rows[0] if rows else None, "versions": rows}


async def save(
    who: Principal, organisation: dict[str, Any], kind: str, data: dict[str, Any]
) -> tuple[str, int | None]:
    """Saves the organisation's text of this page in one language, as a new version.

    Returns (language, the new version), or no version when the text is the one shown already.
    """
    kind_or_404(kind)
    scope = organisation_scope(organisation["id"])
    require(who, "pages.edit", scope)
    form = Form(data)
    language = form.choice("language", LANGUAGES)
    body = form.text("body", max_length=BODY_MAX, required=False, multiline=True)
    form.validate()
    # Rendered here, once, in the pool (outside the transaction, which must stay short).
    body_html = await workers.run(legal_html, body) if body else ""
    where = (
        (LegalText.organisation == organisation["id"])
        & (LegalText.kind == kind)
        & (LegalText.language == language)
    )
    async with db.write_transaction():
        # The organisation's row, written to itself: two coordinators saving at once take turns.
        await Organisation.update({Organisation.slug: organisation["slug"]}).where(
            Organisation.id == organisation["id"]
        )
        latest = await (
            LegalText.select(LegalText.version, LegalText.body)
            .where(where)
            .order_by(LegalText.version, ascending=False)
            .first()
        )
        if (latest["body"] if latest else "") == body:
            return language, None
        version = (latest["version"] + 1) if latest else 1
        await LegalText.insert(
            LegalText(
                organisation=organisation["id"],
                kind=kind,
                language=language,
                version=version,
                body=body,
                body_html=body_html,
                updated_at=datetime.now(UTC),
                updated_by=who.user_id,
            )
        )
        await audit.record(
            who,
            AUDIT_ACTION,
            scope,
            subject=f"legal:{kind}:{language}",
            version=version,
            default=not body,
        )
    return language, version
