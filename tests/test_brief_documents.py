"""A published brief's documents: the tagged PDF (PDF/UA), the archived one (PDF/A) and the DOCX,
in French and Arabic, rendered from the frozen version (exports.snapshot) and read back."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pikepdf
import pytest
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from PIL import Image
from pypdf import PdfReader

from accounts.services import load_principal, open_session
from exports import snapshot
from exports.docx import render_brief_docx
from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory
from exports.pdf import render_brief
from proposals.models import ADOPTED, Media, Proposal
from proposals.themes import THEMES
from tables.models import Institution
from voix.i18n import direction
from votes import closing
from votes import services as votes

from .factories import FLAMANTS_SQUARE, add_proposal, build_world, draw_district, t

LIFTS = "Réparer les ascenseurs de la tour G"
BENCHES = "Des bancs à l'ombre devant l'école"
BINS = "حاويات نفايات إضافية قرب السوق"
TITLE = "Rénovation des Flamants : nos priorités"
ADDRESSEE = "Métropole Aix-Marseille-Provence"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (140, 90, 60)).save(out, "JPEG", quality=80)
    return out.getvalue()


async def published() -> tuple[dict[str, Any], dict[int, tuple[str, bytes]]]:
    """Version 1 of a brief of three adopted proposals in two themes (one written in Arabic,
    two placed on the map, one with a photo), decided by a closed majority-judgment vote and a
    closed for/against one; two addressees, an organisation and a resident who sign."""
    world = await build_world()
    table = world.table_a
    district = await draw_district(table, FLAMANTS_SQUARE)
    lifts = await add_proposal(table, LIFTS, latitude=43.329, longitude=5.41, district=district)
    benches = await add_proposal(
        table, BENCHES, theme="public_space", latitude=43.33, longitude=5.408, district=district
    )
    bins = await add_proposal(
        table, BINS, theme="public_space", language="ar", body="الحاويات تمتلئ بسرعة يوم السوق."
    )
    manager = await load_principal(await open_session(world.users["facilitator_a"], verified=True))
    resident = await load_principal(await open_session(world.users["resident_a"]))
    ranked = await votes.open_vote(
        manager,
        table,
        [lifts, benches],
        {"question": "Quelles priorités porter ?", "method": "majority_judgment"},
    )
    options = (await votes.options([ranked]))[ranked]
    await votes.cast(resident, table, ranked, {f"grade-{o['id']}": "1" for o in options})
    await closing.close_vote(manager, table, ranked)
    single = await votes.open_vote(manager, table, [bins], {"question": "Plus de poubelles ?"})
    await votes.cast(resident, table, single, {"choice": "yes"})
    await closing.close_vote(manager, table, single)
    await Proposal.update({Proposal.status: ADOPTED}).where(
        Proposal.id.is_in([lifts, benches, bins])
    )
    photo = jpeg()
    media = (
        await Media.insert(
            Media(
                proposal=lifts,
                kind="photo",
                token="brief-photo",
                content_type="image/jpeg",
                data=photo,
                size=len(photo),
                publication_consent_at=datetime.now(UTC),
            )
        ).returning(Media.id)
    )[0]["id"]
    now = datetime.now(UTC)
    brief = (
        await Brief.insert(
            Brief(
                slug="flamants-priorites",
                table=table["id"],
                title=TITLE,
                addressed_to="",
                introduction="La table a **débattu** puis voté ces propositions.",
                language="fr",
                published_at=now,
                created_at=now,
                updated_at=now,
            )
        ).returning(Brief.id)
    )[0]["id"]
    await BriefItem.insert(
        BriefItem(brief=brief, proposal=lifts, position=1, photo=media),
        BriefItem(brief=brief, proposal=benches, position=2),
        BriefItem(brief=brief, proposal=bins, position=3),
    )
    for position, (name, service) in enumerate(
        ((ADDRESSEE, "Direction de la politique de la ville"), ("13 Habitat", "Agence Nord")),
        start=1,
    ):
        institution = (
            await Institution.insert(
                Institution(
                    organisation=table["organisation"],
                    name=name,
                    service=service,
                    address="2 quai d'Arenc\n13002 Marseille",
                )
            ).returning(Institution.id)
        )[0]["id"]
        await BriefAddressee.insert(
            BriefAddressee(brief=brief, institution=institution, position=position)
        )
    await BriefSignatory.insert(
        BriefSignatory(brief=brief, position=1, name="Avec Nous", capacity="L'association"),
        BriefSignatory(
            brief=brief,
            position=2,
            name="Fatima Benali",
            capacity="Habitante des Flamants",
            user=world.users["resident_a"],
        ),
    )
    document = await snapshot.build(brief, version=1)
    return document, {media: ("image/jpeg", photo)}


def texts(content: bytes) -> list[str]:
    """Each page's text, its lines joined: a title may wrap."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]


def structure(content: bytes) -> tuple[pikepdf.Pdf, list[pikepdf.Dictionary]]:
    """The PDF and its structure elements in document order (depth first: reading order)."""
    document = pikepdf.open(io.BytesIO(content))
    found: list[pikepdf.Dictionary] = []

    def walk(node: Any) -> None:
        if isinstance(node, pikepdf.Array):
            for child in node:
                walk(child)
        elif isinstance(node, pikepdf.Dictionary) and "/S" in node:
            found.append(node)
            walk(node.get("/K"))

    walk(document.Root.StructTreeRoot.K)
    return document, found


def theme_label(slug: str, lang: str) -> str:
    return t(THEMES[slug].msgid, lang)


async def test_the_french_pdf_holds_every_part_of_the_brief() -> None:
    document, photos = await published()
    content = render_brief(snapshot.localised(document, "fr"), "fr", photos=photos)
    pages = texts(content)
    cover, everything = pages[0], "\n".join(pages)
    assert TITLE in cover
    assert ADDRESSEE in cover
    assert "Direction de la politique de la ville" in cover
    assert "Avec Nous" in cover
    assert t("Version %(version)d, published on %(date)s", version=1, date="")[:9] in cover
    # Contents: each theme with the page its section starts on.
    for slug in ("housing", "public_space"):
        label = theme_label(slug, "fr")
        found = re.search(rf"{re.escape(label)} \(\d\)[ .]*(\d+)", pages[1])
        assert found, (label, pages[1])
        assert label in pages[int(found[1]) - 1]
    # Each proposal, with the vote that decided it.
    for title in (LIFTS, BENCHES):
        assert title in everything
    assert t("Majority judgment") in everything
    # Participation, as numbers: two closed votes, one person who voted, three proposals.
    assert re.search(rf"{t('Votes held')}\s*2", everything)
    assert re.search(rf"{t('People who voted')}\s*1", everything)
    assert re.search(rf"{t('Proposals')}\s*3", everything)
    assert re.search(rf"{t('Proposals by district')} Quartier flamants-iris\s*2", everything)
    # Signatures, then the annex: each ballot box's address and fingerprint, the brief's page.
    assert "Fatima Benali" in everything
    assert "Habitante des Flamants" in everything
    annex = pages[-1]
    for vote in document["votes"]:
        assert vote["box_sha256"] in annex
        assert vote["box_url"] in annex
    assert document["url"] in annex
    # Nothing but the cover is without its running title.
    assert all(TITLE[:20] in page for page in pages[1:])


async def test_an_untranslated_proposal_and_title_say_so() -> None:
    document, _photos = await published()
    french = "\n".join(texts(render_brief(snapshot.localised(document, "fr"), "fr")))
    arabic_original = t("Not translated yet — original text in %(language)s.", language="arabe")
    assert arabic_original in french  # the proposal written in Arabic
    english = texts(render_brief(snapshot.localised(document, "en"), "en"))
    note = t("Not translated yet — original text in %(language)s.", "en", language="French")
    assert note in english[0]  # the title, on the cover


async def test_the_arabic_pdf_is_tagged_right_to_left_in_reading_order() -> None:
    document, photos = await published()
    doc = snapshot.localised(document, "ar")
    pdf, elements = structure(render_brief(doc, "ar", photos=photos))
    assert str(pdf.Root.Lang) == "ar"
    assert pdf.Root.MarkInfo.Marked is True
    assert "/StructTreeRoot" in pdf.Root
    assert pdf.open_metadata().get("pdfuaid:part") == "1"
    kinds = [str(element.S) for element in elements]
    assert {"/H1", "/H2", "/H3", "/P", "/Figure", "/Table"} <= set(kinds)
    # Every figure (map, photo, merit profiles, bars, QR code) says what it shows.
    figures = [element for element in elements if element.S == "/Figure"]
    assert figures
    assert all(str(figure.get("/Alt", "")).strip() for figure in figures)
    assert t("Photo attached to the proposal", "ar") in {str(f.Alt) for f in figures}
    # The French text of the Arabic document carries its language; the participation's row
    # headers say so.
    assert any(str(element.get("/Lang", "")) == "fr" for element in elements)
    headers = [element for element in elements if element.S == "/TH"]
    assert headers
    assert all(str(header.A.Scope) == "/Row" for header in headers)
    # Headings in the document's order: the title; the cover's addressees, the contents, the
    # context, the map; each theme with its proposals; participation, signatures, the annex.
    headings = [kind for kind in kinds if re.fullmatch(r"/H\d", kind)]
    expected = ["/H1", "/H2", "/H2", "/H2", "/H2"]
    for group in doc["themes"]:
        expected += ["/H2"] + ["/H3"] * len(group["items"])
    assert doc["participation"]["by_district"]
    expected += ["/H2", "/H3", "/H2", "/H2"]  # participation (by district), signatures, annex
    assert headings[: len(expected)] == expected
    assert headings[len(expected) :]
    assert set(headings[len(expected) :]) <= {"/H3", "/H4"}


async def test_the_archived_pdf_identifies_itself_as_pdf_a() -> None:
    document, photos = await published()
    content = render_brief(snapshot.localised(document, "fr"), "fr", variant="a", photos=photos)
    pdf = pikepdf.open(io.BytesIO(content))
    metadata = pdf.open_metadata()
    assert metadata.get("pdfaid:part") == "2"
    assert metadata.get("pdfaid:conformance") == "U"
    assert "/OutputIntents" in pdf.Root
    assert "/StructTreeRoot" in pdf.Root  # tagged all the same
    with pytest.raises(ValueError, match="variant"):
        render_brief(snapshot.localised(document, "fr"), "fr", variant="x")


async def test_the_docx_has_real_headings_and_reads_right_to_left_in_arabic() -> None:
    document, photos = await published()
    french = Document(
        io.BytesIO(render_brief_docx(snapshot.localised(document, "fr"), "fr", photos))
    )
    by_style: dict[str, list[str]] = {}
    for paragraph in french.paragraphs:
        by_style.setdefault(paragraph.style.name, []).append(paragraph.text)
    assert by_style["Heading 1"] == [TITLE]
    assert theme_label("housing", "fr") in by_style["Heading 2"]
    assert theme_label("public_space", "fr") in by_style["Heading 2"]
    assert any(LIFTS in text for text in by_style["Heading 3"])
    assert len(french.tables) >= 3  # participation, by district, the annex's ballot boxes
    annex = "\n".join(
        cell.text for table in french.tables for row in table.rows for cell in row.cells
    )
    assert document["votes"][0]["box_sha256"] in annex
    assert len(french.inline_shapes) == 2  # the photo and the QR code
    language = french.styles["Normal"].element.rPr.find(qn("w:lang"))
    assert language.get(qn("w:val")) == "fr-FR"

    arabic = Document(
        io.BytesIO(render_brief_docx(snapshot.localised(document, "ar"), "ar", photos))
    )
    assert arabic.styles["Normal"].element.pPr.find(qn("w:bidi")) is not None
    body = [paragraph for paragraph in arabic.paragraphs if paragraph.text.strip()]
    # Each paragraph stands on the right: right to left, or a French one left to right (its
    # words and numbers in order) aligned right.
    for paragraph in body:
        bidi = paragraph._p.pPr.find(qn("w:bidi"))
        if direction(paragraph.text) == "rtl":
            assert bidi is not None
            assert bidi.get(qn("w:val")) != "0"
        else:
            assert paragraph.alignment == WD_ALIGN_PARAGRAPH.RIGHT, paragraph.text
    assert any(direction(paragraph.text) == "rtl" for paragraph in body)
    runs = [run for paragraph in body for run in paragraph.runs if BINS in run.text]
    assert runs
    assert runs[0]._r.rPr.find(qn("w:rtl")) is not None
    headings = [p.text for p in arabic.paragraphs if p.style.name == "Heading 2"]
    assert theme_label("public_space", "ar") in headings
