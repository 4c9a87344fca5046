"""PDF rendering of briefs with WeasyPrint, with nothing fetched from outside the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weasyprint import HTML
from weasyprint.urls import URLFetcher

from exports.services import BriefDocument
from proposals.themes import THEMES
from voix import i18n
from voix.web import build_environment

ASSETS = (Path(__file__).parent / "assets").resolve()


class LocalAssetsOnly(URLFetcher):
    """Serves the brief's fonts and styles; refuses every other URL, network above all."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file", "data"})

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith("file:"):
            path = Path(url.removeprefix("file://").split("?")[0]).resolve()
            if not path.is_relative_to(ASSETS):
                raise ValueError(f"Refused outside the brief's assets: {url}")
        return super().fetch(url, headers)


_environment = build_environment()


def render_brief(document: BriefDocument, lang: str) -> bytes:
    token = i18n.current_language.set(lang)
    try:
        html = _environment.get_template("exports/pdf/brief.html").render(
            brief=document,
            lang=i18n.language(lang),
            themes=THEMES,
            assets=ASSETS.as_uri(),
        )
        return HTML(
            string=html, base_url=ASSETS.as_uri() + "/", url_fetcher=LocalAssetsOnly()
        ).write_pdf()
    finally:
        i18n.current_language.reset(token)
