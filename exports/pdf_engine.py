"""WeasyPrint as the documents use it: patched, and fetching nothing outside their assets.

Imported only where a document is laid out (exports.pdf's and followup.pdf's renderers, which
run in worker processes, voix.workers), never by the web process at start-up: WeasyPrint and
its font and text libraries take half a second to load. Importing this module patches
WeasyPrint (_tag_languages, _right_to_left_lines_laid_out_once) once per process, before any
document is laid out, since every layout goes through `document`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from weasyprint import HTML
from weasyprint.document import Document
from weasyprint.formatting_structure import boxes
from weasyprint.layout import inline as inline_layout
from weasyprint.pdf import tags as pdf_tags
from weasyprint.urls import URLFetcher, URLFetcherResponse

from exports.pdf import ASSETS, PHOTO_SCHEME, asset_path


class LocalAssetsOnly(URLFetcher):
    """Serves the documents' fonts and images; refuses every other URL, network above all."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file", "data"})

    def fetch(self, url: str, headers: Any = None) -> Any:
        scheme = urlsplit(url.strip()).scheme.lower()
        if scheme == "file":
            return super().fetch(asset_path(url.strip()).as_uri(), headers)
        if scheme != "data":  # WeasyPrint reads the scheme case-insensitively, so must this
            raise ValueError(f"Refused outside the brief's assets: {url}")
        return super().fetch(url, headers)


def _tag_languages() -> None:
    """Tagged PDFs name the language of each element written in another than the document's
    (PDF/UA, ISO 14289-1 7.2), and the row or column each table header heads (7.5): WeasyPrint
    70 tags the structure but leaves out the elements' `lang` and the headers' `scope`, so each
    structure element made from an HTML element with one gets it, as /Lang or as the /Scope
    of its table attributes. Only tagged renderings (the briefs) go through this."""
    build = getattr(pdf_tags, "_build_box_tree", None)
    if build is None or getattr(build, "with_languages", False):
        return

    def with_lang(box: Any, *args: Any) -> Any:
        element = getattr(box, "element", None)
        lang = scope = None
        if element is not None and getattr(box, "element_tag", None) not in ("html", "body"):
            lang = element.get("lang")
            scope = _SCOPES.get(element.get("scope", "")) if box.element_tag == "th" else None
        for structure in build(box, *args):
            if lang and "Lang" not in structure:
                structure["Lang"] = pdf_tags.pydyf.String(lang)
            if scope and structure.get("S") == "/TH" and "A" in structure:
                structure["A"]["Scope"] = scope
            yield structure

    with_lang.with_languages = True  # type: ignore[attr-defined]
    pdf_tags._build_box_tree = with_lang


_SCOPES = {"row": "/Row", "col": "/Column"}


def _right_to_left_lines_laid_out_once() -> None:
    """WeasyPrint 70 lays out each line of right-to-left text twice, and a line holding an
    inline block (a proposal's text beside its photo) twice more inside: after laying a line
    out it asks where the line would now stand (floats might have moved it) and starts again
    unless nothing moved; in a right-to-left block it compares the line's right edge, its
    place plus its width, with where it started, but its place is already that right edge,
    so nothing ever compares equal. Told the line's left edge instead, it sees nothing moved
    and keeps the line it made, the same. Only where no float stands (none in our documents):
    with floats, WeasyPrint's own answer, and its second try, are kept."""
    place = getattr(inline_layout, "avoid_collisions", None)
    if place is None or getattr(place, "line_start", False):
        return

    def line_start(context: Any, box: Any, containing_block: Any, outer: bool = True) -> Any:
        x, y, width = place(context, box, containing_block, outer)
        if (
            isinstance(box, boxes.LineBox)
            and not context.excluded_shapes
            and containing_block.style["direction"] == "rtl"
        ):
            x -= box.width
        return x, y, width

    line_start.line_start = True  # type: ignore[attr-defined]
    inline_layout.avoid_collisions = line_start


class WithPhotos(LocalAssetsOnly):
    """LocalAssetsOnly, and a brief's photos, from memory, at `voix-photo:MEDIA_ID`.

    Not as data: URIs written in the HTML: the HTML parser reads every character of an
    attribute, and 200 photos made tens of megabytes of it, seconds of parsing."""

    def __init__(self, photos: dict[int, tuple[str, bytes]]) -> None:
        super().__init__()
        self.photos = photos

    def fetch(self, url: str, headers: Any = None) -> Any:
        scheme, _, media = url.strip().partition(":")
        if scheme.lower() != PHOTO_SCHEME:
            return super().fetch(url, headers)
        found = self.photos.get(int(media)) if media.isdigit() else None
        if found is None:
            raise ValueError(f"No such photo in this brief: {url}")
        content_type, data = found
        return URLFetcherResponse(url, body=data, headers={"Content-Type": content_type})


_tag_languages()
_right_to_left_lines_laid_out_once()


def document(html: str, fetcher: URLFetcher | None = None) -> Document:
    """The laid-out pages, to measure before writing."""
    return HTML(
        string=html, base_url=ASSETS.as_uri() + "/", url_fetcher=fetcher or LocalAssetsOnly()
    ).render()
