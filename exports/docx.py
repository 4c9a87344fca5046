"""A published brief as a Word document (DOCX), for the associations that edit before they sign.

The same content as its PDF (exports.pdf.render_brief), from the same localised document
(exports.snapshot.localised) and through the same gettext catalogs: real Heading 1/2/3 styles
(the title, the sections and themes, the proposals), the document's language in its styles,
in Arabic every paragraph on the right, right-to-left (w:bidi) unless its text is French or
English, and each Arabic run marked so (w:rtl), text in another language than the document's
marked with its own (w:lang), tables for the participation, the signatures and the annex, the
photos and the page's QR code embedded.

The map is not drawn here: Word does not show our SVG, and the document says where to see it.
CPU work, like the PDFs: run it in the worker pool (voix.workers).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any, ClassVar

import segno
from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.table import Table
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from exports.pdf import printed_photos
from proposals.themes import THEMES
from voix import i18n
from voix.i18n import N_, gettext, language_name, ngettext
from votes.scales import APPROVAL, GRADE_LABELS, MAJORITY_JUDGMENT, METHOD_LABELS

# Word's language tags for ours: the document's language, and Arabic as its complex script.
_WORD_LANGUAGES = {"fr": "fr-FR", "ar": "ar-SA", "en": "en-GB"}
_LATIN_FONT, _ARABIC_FONT = "Noto Sans", "Noto Naskh Arabic"
_ACCENT = RGBColor(0x8C, 0x1D, 0x40)
_MUTED = RGBColor(0x5B, 0x62, 0x70)

# The explanations of the annex, the same msgids as the PDF's (brief.html).
_METHODS = {
    MAJORITY_JUDGMENT: N_(
        "Each voter gave every proposal a grade, from “Excellent” to “To reject”. A proposal's majority grade is the best grade that at least half of the voters gave it or a better one; proposals are ranked by majority grade. Its merit profile shows how many voters gave each grade."
    ),
    APPROVAL: N_(
        "Each voter ticked every proposal they approved, as many as they wished. Proposals are ranked by their number of approvals."
    ),
}
_YES_NO = N_(
    "Each voter answered for, against or abstain on one proposal. Abstentions are counted and published; the proposal is adopted when the rule set before the vote opened is met."
)
_SECRET = N_(
    "Ballots are secret: no name is kept with a ballot. Once a vote is closed, its ballot box, every ballot without names, is public."
)
_RECOUNT = N_(
    "Each ballot box can be downloaded at its address and recounted by anyone. Its SHA-256 fingerprint, printed here, changes if a single character of the file changes."
)
_UNTRANSLATED = N_("Not translated yet — original text in %(language)s.")
_COUNTS_NOTE = N_(
    "Counts only: no name is published. A person present at several meetings counts once among the people present and once per meeting among the attendances; a person who voted several times counts once among the people who voted."
)
_COLOPHON = N_(
    "Proposals written by residents and adopted by the table's vote. Residents' names are not published. Produced with Voix des Quartiers."
)
_MAP_ELSEWHERE = N_(
    "The map of the proposals, numbered as below, is in the PDF of this document and on its page:"
)


# Where w:bidi goes among its siblings: Word refuses a file whose properties are out of the
# schema's order (LibreOffice forgives it).
_AFTER_PARAGRAPH_BIDI = (
    "w:adjustRightInd", "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing",
    "w:mirrorIndents", "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment",
    "w:textboxTightWrap", "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr",
    "w:pPrChange",
)  # fmt: skip
_AFTER_SECTION_BIDI = ("w:rtlGutter", "w:docGrid", "w:printerSettings", "w:sectPrChange")
_AFTER_TABLE_BIDI = (
    "w:tblStyleRowBandSize", "w:tblStyleColBandSize", "w:tblW", "w:jc", "w:tblCellSpacing",
    "w:tblInd", "w:tblBorders", "w:shd", "w:tblLayout", "w:tblCellMar", "w:tblLook",
)  # fmt: skip


def _set_bidi(
    properties: Any, successors: tuple[str, ...], tag: str = "w:bidi", on: bool = True
) -> None:
    """Sets (or, `on` false, turns off) right-to-left on a pPr, sectPr or tblPr, in place."""
    found = properties.find(qn(tag))
    if found is None:
        found = OxmlElement(tag)
        properties.insert_element_before(found, *successors)
    if on:
        found.attrib.pop(qn("w:val"), None)
    else:
        found.set(qn("w:val"), "0")


def _rtl_text(text: str) -> bool:
    return i18n.direction(text) == "rtl"


class _Writer:
    """Writes one brief into a python-docx Document, in the reader's language."""

    def __init__(self, doc: dict[str, Any], lang: str, photos: dict[int, tuple[str, bytes]]):
        self.doc, self.lang, self.photos = doc, lang, photos
        self.rtl = i18n.language(lang).direction == "rtl"
        self.word = Document()
        self._styles()

    # Styles and low-level helpers.

    def _styles(self) -> None:
        """The document's language and fonts on its default style; the headings' look."""
        styles = self.word.styles
        normal = styles["Normal"]
        normal.font.name = _LATIN_FONT
        normal.font.size = Pt(10.5)
        properties = normal.element.get_or_add_rPr()
        fonts = properties.find(qn("w:rFonts"))
        if fonts is None:
            fonts = OxmlElement("w:rFonts")
            properties.append(fonts)
        for attribute in ("w:ascii", "w:hAnsi"):
            fonts.set(qn(attribute), _LATIN_FONT)
        fonts.set(qn("w:cs"), _ARABIC_FONT)
        size = OxmlElement("w:szCs")
        size.set(qn("w:val"), "21")
        properties.append(size)
        language = OxmlElement("w:lang")
        language.set(qn("w:val"), _WORD_LANGUAGES.get(self.lang, self.lang))
        language.set(qn("w:bidi"), _WORD_LANGUAGES["ar"])
        properties.append(language)
        if self.rtl:
            _set_bidi(normal.element.get_or_add_pPr(), _AFTER_PARAGRAPH_BIDI)
        for name, points in (("Heading 1", 22), ("Heading 2", 15), ("Heading 3", 11.5)):
            style = styles[name]
            style.font.name = _LATIN_FONT
            style.font.size = Pt(points)
            style.font.color.rgb = _ACCENT if name == "Heading 2" else RGBColor(0x1D, 0x22, 0x30)
            if self.rtl:
                _set_bidi(style.element.get_or_add_pPr(), _AFTER_PARAGRAPH_BIDI)

    def _direction(self, paragraph: Paragraph, text: str = "") -> Paragraph:
        """In the Arabic document every paragraph stands on the right: right to left (w:bidi;
        its start is the right), or, when its text is French or English ("13 Habitat", a
        title), left to right, so that its words and numbers keep their order, and aligned
        right, as the PDF has it."""
        if self.rtl:
            properties = paragraph._p.get_or_add_pPr()
            if text and i18n.direction(text) == "ltr":
                _set_bidi(properties, _AFTER_PARAGRAPH_BIDI, on=False)
                paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            else:
                _set_bidi(properties, _AFTER_PARAGRAPH_BIDI)
        return paragraph

    def _run(self, paragraph: Paragraph, text: str, *, language: str = "", **style: Any) -> Run:
        """A run of text: w:rtl when it is Arabic, w:lang when not in the document's language."""
        run = paragraph.add_run(text)
        for name, value in style.items():
            if name == "color":
                run.font.color.rgb = value
            else:
                setattr(run.font, name, value)
        properties = run._r.get_or_add_rPr()
        if _rtl_text(text):
            properties.append(OxmlElement("w:rtl"))
        if language and language != self.lang:
            tag = OxmlElement("w:lang")
            word = _WORD_LANGUAGES.get(language, language)
            tag.set(qn("w:bidi" if language == "ar" else "w:val"), word)
            properties.append(tag)
        return run

    def paragraph(
        self, text: str = "", style: str | None = None, *, language: str = "", **font: Any
    ) -> Paragraph:
        paragraph = self._direction(self.word.add_paragraph(style=style), text)
        if text:
            self._run(paragraph, text, language=language, **font)
        return paragraph

    def heading(
        self, text: str, level: int, *, language: str = "", reads_as: str = ""
    ) -> Paragraph:
        """`reads_as`: the text that sets its direction, when more is added after `text`."""
        paragraph = self.word.add_paragraph(style=f"Heading {level}")
        self._direction(paragraph, reads_as or text)
        self._run(paragraph, text, language=language)
        return paragraph

    def note(self, text: str) -> Paragraph:
        return self.paragraph(text, italic=True, size=Pt(8.5), color=_MUTED)

    def table(self, rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> Table:
        table = self.word.add_table(rows=0, cols=len(rows[0] if rows else header or ("",)))
        table.style = self.word.styles["Table Grid"]
        if self.rtl:  # its first column on the right; the table at the right margin, its start
            _set_bidi(table._tbl.tblPr, _AFTER_TABLE_BIDI, "w:bidiVisual")
        for index, values in enumerate([*([header] if header else []), *rows]):
            cells = table.add_row().cells
            for cell, value in zip(cells, values, strict=False):
                paragraph = self._direction(cell.paragraphs[0], str(value))
                self._run(paragraph, str(value), bold=bool(header) and index == 0)
        for row in table.rows:  # a row is never cut across two pages
            row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
        return table

    def _field(self, paragraph: Paragraph, instruction: str) -> None:
        """A field Word computes (PAGE, NUMPAGES)."""
        run = paragraph.add_run()
        for kind in ("begin", None, "separate", "end"):
            if kind is None:
                text = OxmlElement("w:instrText")
                text.set(qn("xml:space"), "preserve")
                text.text = f" {instruction} "
                run._r.append(text)
                continue
            character = OxmlElement("w:fldChar")
            character.set(qn("w:fldCharType"), kind)
            run._r.append(character)
            if kind == "separate":
                placeholder = OxmlElement("w:t")
                placeholder.text = "1"
                run._r.append(placeholder)

    # The parts of the brief.

    def page_furniture(self) -> None:
        """The title at the head of each page, "n / N" at its foot; nothing on the cover."""
        section = self.word.sections[0]
        section.page_width, section.page_height = Mm(210), Mm(297)
        for side in ("left_margin", "right_margin"):
            setattr(section, side, Mm(20))
        section.top_margin = section.bottom_margin = Mm(22)
        section.different_first_page_header_footer = True
        header = self._direction(section.header.paragraphs[0], self.doc["title"])
        header.alignment = WD_ALIGN_PARAGRAPH.CENTER
        self._run(header, self.doc["title"], language=self.doc["title_language"], size=Pt(8))
        footer = section.footer.paragraphs[0]
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        # "1 / 2" in any language, never "2 / 1".
        _set_bidi(footer._p.get_or_add_pPr(), _AFTER_PARAGRAPH_BIDI, on=False)
        self._field(footer, "PAGE")
        footer.add_run(" / ")
        self._field(footer, "NUMPAGES")
        if self.rtl:
            _set_bidi(section._sectPr, _AFTER_SECTION_BIDI)

    def cover(self, organisations: list[str]) -> None:
        doc = self.doc
        for organisation in organisations:
            self.paragraph(organisation, bold=True, size=Pt(15), color=_ACCENT)
        table = doc["table"]
        self.paragraph(
            f"{gettext('Neighbourhood table')} {table['name']} · {table['postcode']} Marseille"
        )
        if table["districts"]:
            self.paragraph(", ".join(d["name"] for d in table["districts"]), color=_MUTED)
        for _ in range(4):
            self.paragraph()
        self.heading(doc["title"], 1, language=doc["title_language"])
        if not doc["notes"]["title_translated"]:
            self.note(gettext(_UNTRANSLATED, language=language_name(doc["title_language"])))
        self.paragraph(
            gettext(
                "Version %(version)d, published on %(date)s",
                version=doc["version"],
                date=i18n.date(doc["published_at"]),
            )
        )
        if doc["addressees"]:
            self.paragraph()
            self.paragraph(gettext("Addressed to"), bold=True, size=Pt(9), color=_MUTED)
            for addressee in doc["addressees"]:
                self.paragraph(addressee["name"], bold=True)
                for line in [addressee["service"], *addressee["address"].splitlines()]:
                    if line.strip():
                        self.paragraph(line)
        self.paragraph(
            ngettext(
                "%(num)d proposal adopted by the table",
                "%(num)d proposals adopted by the table",
                len(doc["items"]),
            ),
            size=Pt(9),
            color=_MUTED,
        )
        self.word.add_paragraph().add_run().add_break(WD_BREAK.PAGE)

    def contents(self, has_map: bool) -> None:
        """The parts, in order (Word numbers the pages; a field would show nothing until
        updated by hand)."""
        doc = self.doc
        self.heading(gettext("Contents"), 2)
        entries = []
        if doc["context_html"]:
            entries.append(gettext("Context"))
        if has_map:
            entries.append(gettext("On the map"))
        entries += [
            f"{self.theme_label(group['theme'])} ({len(group['items'])})" for group in doc["themes"]
        ]
        if doc["participation"]:
            entries.append(gettext("Participation"))
        if doc["signatories"]:
            entries.append(gettext("Signatures"))
        entries.append(gettext("Annex: how the votes were run"))
        for entry in entries:
            self.paragraph(entry, "List Number")

    def theme_label(self, slug: str) -> str:
        theme = THEMES.get(slug)
        return theme.label if theme else slug

    def context(self) -> None:
        doc = self.doc
        if not doc["context_html"]:
            return
        self.heading(gettext("Context"), 2)
        if not doc["notes"]["title_translated"]:
            self.note(gettext(_UNTRANSLATED, language=language_name(doc["title_language"])))
        text = re.sub(r"<[^>]*>", " ", doc["context_html"])
        _ContextHtml(self, doc["context_language"], text).feed(doc["context_html"])

    def map_note(self) -> None:
        self.heading(gettext("On the map"), 2)
        self.paragraph(gettext(_MAP_ELSEWHERE))
        self.paragraph(self.doc["url"], language="en")

    def proposals(self, votes: dict[int, dict[str, Any]]) -> None:
        items = {item["n"]: item for item in self.doc["items"]}
        for group in self.doc["themes"]:
            self.heading(self.theme_label(group["theme"]), 2)
            for n in group["items"]:
                self.proposal(items[n], votes)

    def proposal(self, item: dict[str, Any], votes: dict[int, dict[str, Any]]) -> None:
        shown = item["shown_language"]
        heading = self.heading(f"{item['n']}. ", 3, reads_as=item["title"])
        self._run(heading, item["title"], language=shown)
        if shown != self.lang:
            self.note(gettext(_UNTRANSLATED, language=language_name(shown)))
        found = self.photos.get(item["photo"]) if item.get("photo") else None
        if found:
            self._direction(self.word.add_paragraph()).add_run().add_picture(
                io.BytesIO(found[1]), width=Mm(60)
            )
            picture = self.word.inline_shapes[-1]._inline.docPr
            picture.set("descr", gettext("Photo attached to the proposal"))
        for text in item["body"].split("\n"):
            self.paragraph(text, language=shown)
        facts = []
        if item.get("latitude") is not None:
            facts.append(gettext("Dot %(number)d on the map", number=item["n"]))
        if item["district"]:
            facts.append(f"{gettext('District')} {item['district']}")
        facts.append(ngettext("%(num)d support", "%(num)d supports", item["supports"] or 0))
        self.paragraph(" · ".join(facts), size=Pt(8.5), color=_MUTED)
        vote = votes.get(item["vote"]) if item.get("vote") else None
        option = next(
            (o for o in (vote or {}).get("options", []) if o["id"] == item.get("option")), None
        )
        if vote and option:
            self.paragraph(vote_line(vote, option), size=Pt(9))
            if vote["method"] == MAJORITY_JUDGMENT and option.get("tally"):
                self.paragraph(merit_line(vote, option), size=Pt(8.5), color=_MUTED)

    def participation(self) -> None:
        counts = self.doc["participation"]
        if not counts:
            return
        self.heading(gettext("Participation"), 2)
        self.table(
            [
                (gettext("Meetings held"), counts["meetings"]),
                (gettext("People present"), counts["present"]),
                (gettext("Attendances"), counts["attendances"]),
                (gettext("Votes held"), counts["votes"]),
                (gettext("People who voted"), counts["voters"]),
                (gettext("Proposals"), counts["proposals"]),
            ]
        )
        self.note(gettext(_COUNTS_NOTE))
        if counts["by_district"]:
            self.heading(gettext("Proposals by district"), 3)
            self.table(
                [(row["name"], row["proposals"]) for row in counts["by_district"]],
                (gettext("District"), gettext("Proposals")),
            )

    def signatures(self) -> None:
        doc = self.doc
        if not doc["signatories"]:
            return
        self.heading(gettext("Signatures"), 2)
        self.paragraph(
            gettext("For the neighbourhood table %(table)s,", table=doc["table"]["name"])
        ).paragraph_format.keep_with_next = True
        table = self.word.add_table(rows=0, cols=2)
        if self.rtl:
            _set_bidi(table._tbl.tblPr, _AFTER_TABLE_BIDI, "w:bidiVisual")
        signatories = doc["signatories"]
        for start in range(0, len(signatories), 2):
            row = table.add_row()
            row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))  # names with lines
            for cell, signatory in zip(row.cells, signatories[start : start + 2], strict=False):
                name = self._direction(cell.paragraphs[0], signatory["name"])
                self._run(name, signatory["name"], bold=True)
                if signatory["capacity"]:
                    capacity = self._direction(cell.add_paragraph(), signatory["capacity"])
                    self._run(capacity, signatory["capacity"])
                for _ in range(3):
                    self._direction(cell.add_paragraph())
                self._run(self._direction(cell.add_paragraph()), "_" * 30)
                label = (
                    gettext("Stamp of the organisation")
                    if signatory["organisation"]
                    else gettext("Signature")
                )
                self._run(self._direction(cell.add_paragraph(), label), label, size=Pt(8.5))

    def annex(self) -> None:
        doc = self.doc
        self.word.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        self.heading(gettext("Annex: how the votes were run"), 2)
        for method in dict.fromkeys(vote["method"] for vote in doc["votes"]):
            self.heading(gettext(METHOD_LABELS[method]), 3)
            self.paragraph(gettext(_METHODS.get(method, _YES_NO)))
        if doc["votes"]:
            self.paragraph(f"{gettext(_SECRET)} {gettext(_RECOUNT)}")
            self.heading(gettext("The votes and their public ballot boxes"), 3)
            rows = []
            for vote in doc["votes"]:
                method = METHOD_LABELS[vote["method"]]
                facts = [gettext(method)]
                if vote.get("closed_at"):
                    facts.append(gettext("Closed on %(date)s", date=i18n.date(vote["closed_at"])))
                facts.append(
                    ngettext(
                        "%(num)d person took part",
                        "%(num)d people took part",
                        vote.get("participants") or 0,
                    )
                )
                rows.append(
                    (
                        vote["question"],
                        " · ".join(facts),
                        f"{gettext('Ballot box:')} {vote['box_url']}\n"
                        f"{gettext('Its SHA-256 fingerprint:')} {vote['box_sha256']}",
                    )
                )
            self.table(rows)
        self.paragraph()
        qr = io.BytesIO()
        segno.make(doc["url"], error="q").save(qr, kind="png", scale=5, border=2)
        self._direction(self.word.add_paragraph()).add_run().add_picture(
            io.BytesIO(qr.getvalue()), width=Mm(30)
        )
        self.word.inline_shapes[-1]._inline.docPr.set(
            "descr", gettext("QR code of this document’s page")
        )
        self.paragraph(
            gettext("This document, its versions and its translations are public at this address:")
        )
        self.paragraph(doc["url"], language="en")
        self.paragraph(gettext(_COLOPHON), size=Pt(8), color=_MUTED)


class _ContextHtml(HTMLParser):
    """The context (voix.richtext's sanitised HTML: p, h3/h4, lists, quotes, strong, em, a)
    as paragraphs of the document."""

    _HEADINGS: ClassVar[dict[str, int]] = {"h3": 3, "h4": 3, "h5": 3, "h6": 3}

    def __init__(self, writer: _Writer, language: str, reads_as: str) -> None:
        """`reads_as`: the context's text, whose direction its paragraphs take."""
        super().__init__(convert_charrefs=True)
        self.writer, self.language, self.reads_as = writer, language, reads_as
        self.current: Paragraph | None = None
        self.bold = self.italic = 0
        self.lists: list[str] = []
        self.quote = 0
        self.link = ""

    def _open(self, style: str | None = None) -> Paragraph:
        self.current = self.writer._direction(self.writer.paragraph(style=style), self.reads_as)
        return self.current

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HEADINGS:
            self._open(f"Heading {self._HEADINGS[tag]}")
        elif tag == "p":
            self._open("Quote" if self.quote else None)
        elif tag in ("ul", "ol"):
            self.lists.append(tag)
        elif tag == "li":
            self._open("List Bullet" if self.lists[-1:] != ["ol"] else "List Number")
        elif tag == "blockquote":
            self.quote += 1
        elif tag in ("strong", "b"):
            self.bold += 1
        elif tag in ("em", "i"):
            self.italic += 1
        elif tag == "a":
            self.link = dict(attrs).get("href") or ""
        elif tag == "br" and self.current is not None:
            self.current.add_run().add_break()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "li", *self._HEADINGS):
            self.current = None
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag in ("strong", "b"):
            self.bold = max(0, self.bold - 1)
        elif tag in ("em", "i"):
            self.italic = max(0, self.italic - 1)
        elif tag == "a":
            if self.link and self.current is not None:
                self.writer._run(self.current, f" ({self.link})", language="en")
            self.link = ""

    def handle_data(self, data: str) -> None:
        if not data.strip() and self.current is None:
            return
        paragraph = self.current or self._open()
        self.writer._run(
            paragraph,
            data,
            language=self.language,
            bold=bool(self.bold) or None,
            italic=bool(self.italic) or None,
        )


def vote_line(vote: dict[str, Any], option: dict[str, Any]) -> str:
    """One vote's result for one proposal: the words of votes/macros.html `vote_line`."""
    start = (
        gettext("Vote of %(date)s:", date=i18n.date(vote["closed_at"]))
        if vote.get("closed_at")
        else ""
    )
    count = len(vote["options"])
    if vote["method"] == MAJORITY_JUDGMENT:
        grade = option.get("majority_grade")
        label = GRADE_LABELS[vote["grades"][grade]] if grade is not None else ""
        name = gettext(label) if label else "—"
        result = gettext(
            "rank %(rank)d of %(count)d, majority grade “%(grade)s”",
            rank=option.get("rank") or 0,
            count=count,
            grade=name,
        )
    elif vote["method"] == APPROVAL:
        result = ngettext(
            "rank %(rank)d of %(count)d, approved by %(approvals)d of %(num)d voter",
            "rank %(rank)d of %(count)d, approved by %(approvals)d of %(num)d voters",
            vote.get("participants") or 0,
            rank=option.get("rank") or 0,
            count=count,
            approvals=(option.get("tally") or [0])[0],
        )
    else:
        yes, no, abstain = option.get("tally") or (0, 0, 0)
        result = " · ".join(
            f"{gettext(label)} {number}"
            for label, number in (("For", yes), ("Against", no), ("Abstain", abstain))
        )
    return f"{start} {result}".strip()


def merit_line(vote: dict[str, Any], option: dict[str, Any]) -> str:
    """A merit profile in words: each grade, best first, and how many gave it."""
    return " · ".join(
        f"{gettext(GRADE_LABELS[grade])} {count}"
        for grade, count in zip(vote["grades"], option["tally"], strict=False)
    )


def render_brief_docx(
    doc: dict[str, Any], lang: str, photos: dict[int, tuple[str, bytes]] | None = None
) -> bytes:
    """A published brief (exports.snapshot.localised for `lang`) as a DOCX file.

    `photos`: media id → (content type, bytes), as for exports.pdf.render_brief."""
    token = i18n.current_language.set(lang)
    try:
        writer = _Writer(doc, lang, printed_photos(photos))
        word: DocumentObject = writer.word
        word.core_properties.title = doc["title"]
        word.core_properties.author = doc["table"]["organisation_name"]
        word.core_properties.language = _WORD_LANGUAGES.get(lang, lang)
        word.core_properties.created = doc["published_at"]
        organisations = list(
            dict.fromkeys(
                [doc["table"]["organisation_name"]]
                + [s["name"] for s in doc["signatories"] if s["organisation"]]
            )
        )
        has_map = bool(doc["map"] and doc["map"].get("points"))
        writer.page_furniture()
        writer.cover(organisations)
        writer.contents(has_map)
        writer.context()
        if has_map:
            writer.map_note()
        writer.proposals({vote["id"]: vote for vote in doc["votes"]})
        writer.participation()
        writer.signatures()
        writer.annex()
        out = io.BytesIO()
        word.save(out)
        return out.getvalue()
    finally:
        i18n.current_language.reset(token)
