"""PDF rendering with WeasyPrint, with nothing fetched from outside the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import segno
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from exports.services import BriefDocument
from proposals.themes import THEMES
from voix import i18n
from voix.web import build_environment

ASSETS = (Path(__file__).parent / "assets").resolve()


class LocalAssetsOnly(URLFetcher):
    """Serves the documents' fonts and images; refuses every other URL, network above all."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file", "data"})

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith("file:"):
            path = Path(url.removeprefix("file://").split("?")[0]).resolve()
            if not path.is_relative_to(ASSETS):
                raise ValueError(f"Refused outside the brief's assets: {url}")
        return super().fetch(url, headers)


_environment = build_environment()


def _render(template: str, lang: str, **context: Any) -> bytes:
    token = i18n.current_language.set(lang)
    try:
        html = _environment.get_template(template).render(lang=i18n.language(lang), **context)
        return HTML(
            string=html, base_url=ASSETS.as_uri() + "/", url_fetcher=LocalAssetsOnly()
        ).write_pdf()
    finally:
        i18n.current_language.reset(token)


def render_brief(document: BriefDocument, lang: str) -> bytes:
    return _render("exports/pdf/brief.html", lang, brief=document, themes=THEMES)


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
