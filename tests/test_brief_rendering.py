"""What keeps a long brief's PDF within its time (issue 13): right-to-left lines laid out once,
styles computed once for look-alike elements, merit profiles drawn without an image each,
photos shrunk once at publication, no cycle collection while WeasyPrint works.

Each test fails when its saving is undone; the bench (bench/pdf_brief.py) gives the times.
"""

from __future__ import annotations

import copy
import gc
import io
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pikepdf
import pytest
from httpx import AsyncClient
from PIL import Image
from weasyprint.css import StyleFor
from weasyprint.formatting_structure import boxes
from weasyprint.layout import float as float_layout
from weasyprint.layout import inline as inline_layout

from exports import pdf, services, snapshot, stored
from exports.models import BriefItem, BriefPhoto
from exports.photos import PRINTED_PHOTO_SIDE
from proposals.models import ADOPTED, Media
from tests.factories import add_draft, add_proposal, build_world
from tests.test_brief_documents import published
from tests.test_pdf_layout import _brief
from voix.permissions import Principal
from votes.scales import GRADE_COLOURS

ARABIC = (
    "منذ أشهر يشتكي السكان من هذه المشكلة دون أي رد. نطلب تدخلاً سريعاً وجدولاً زمنياً "
    "مكتوباً ولقاءً لمتابعة التقدم مع طاولة الحي. "
) * 3


def _laid_out(html: str) -> tuple[int, int, list[tuple[str, float, float, float]]]:
    """How many times a line was laid out, how many lines the pages hold, and where each box
    stands."""
    tries = Counter()
    split = inline_layout.split_inline_box

    def counted(context: Any, box: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(box, boxes.LineBox):
            tries["line"] += 1
        return split(context, box, *args, **kwargs)

    inline_layout.split_inline_box = counted
    try:
        document = pdf._document(html)
    finally:
        inline_layout.split_inline_box = split
    placed = [
        (
            type(box).__name__,
            round(box.position_x, 3),
            round(box.position_y, 3),
            round(box.width, 3),
        )
        for page in document.pages
        for box in page._page_box.descendants()
    ]
    lines = sum(name == "LineBox" for name, *_ in placed)
    return tries["line"], lines, placed


@pytest.mark.parametrize("floated", [False, True])
def test_right_to_left_lines_are_laid_out_once_where_weasyprint_puts_them(
    monkeypatch: pytest.MonkeyPatch, floated: bool
) -> None:
    """A paragraph, and an inline block of text (a proposal's text beside its photo), in an
    Arabic document: each line laid out once (WeasyPrint 70 made every right-to-left line
    twice, and the lines of an inline block four times), each box where WeasyPrint itself puts
    it. Beside a float, WeasyPrint's own way is kept."""
    beside = '<div style="float: left; width: 30mm; height: 80mm"></div>' if floated else ""
    html = (
        f'<html lang="ar" dir="rtl"><body>{beside}<p>{ARABIC}</p>'
        f'<div><span style="display: inline-block; width: 60mm">{ARABIC}</span></div></body></html>'
    )
    tries, lines, placed = _laid_out(html)
    monkeypatch.setattr(inline_layout, "avoid_collisions", float_layout.avoid_collisions)
    weasyprint_tries, weasyprint_lines, weasyprint_placed = _laid_out(html)
    assert placed == weasyprint_placed
    assert lines == weasyprint_lines > 10
    if floated:  # lines beside the float as WeasyPrint makes them, those after it once
        assert lines < tries < weasyprint_tries
    else:
        assert tries == lines
        assert weasyprint_tries > 3 * lines


def _computed_styles(document: dict[str, Any], lang: str) -> int:
    """How many element styles WeasyPrint computes to lay the brief out."""
    made = Counter()
    compute = StyleFor.set_computed_styles

    def counted(self: StyleFor, element: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("pseudo_type") is None:
            made["element"] += 1
        return compute(self, element, *args, **kwargs)

    StyleFor.set_computed_styles = counted  # type: ignore[method-assign]
    try:
        pdf._document(pdf._html("exports/pdf/brief.html", lang, **pdf.brief_context(document)))
    finally:
        StyleFor.set_computed_styles = compute  # type: ignore[method-assign]
    return made["element"]


def _longer(document: dict[str, Any], times: int) -> dict[str, Any]:
    """The brief with its proposals `times` over, numbered on."""
    longer = copy.deepcopy(document)
    items = [
        {**item, "n": n, "id": 1000 + n}
        for n, item in enumerate(document["items"] * times, start=1)
    ]
    longer["items"] = items
    themes = dict.fromkeys(item["theme"] for item in items)
    longer["themes"] = [
        {"theme": theme, "items": [i["n"] for i in items if i["theme"] == theme]}
        for theme in themes
    ]
    return longer


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_a_proposal_s_styles_are_computed_once_for_all_proposals(lang: str) -> None:
    """WeasyPrint shares a computed style between elements of the same rules under the same
    parent's style; an id or a style attribute in each proposal made each compute its own."""
    document = _brief({}, lang)
    few = _computed_styles(_longer(document, 2), lang)  # eight proposals
    many = _computed_styles(_longer(document, 6), lang)  # twenty-four
    # 16 more proposals: not 16 times each one's dozen elements; in the Arabic document, but
    # the two of each French proposal's text that carry their own language (lang="fr").
    per_proposal = 3 if lang == "ar" else 1
    assert many - few < 16 * per_proposal


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_a_merit_profile_is_drawn_from_its_tallies(lang: str) -> None:
    document, photos = await published()
    doc = snapshot.localised(document, lang)
    vote = next(v for v in doc["votes"] if v["method"] == "majority_judgment")
    option = vote["options"][0]
    option["tally"] = [3, 1, 0, 0, 4] + [0] * (len(vote["grades"]) - 5)
    html = pdf._html("exports/pdf/brief.html", lang, **pdf.brief_context(doc, photos))
    bars = re.findall(r'<div class="merit-bar" style="background-image: ([^"]+)"></div>', html)
    assert len(bars) == 2  # the two proposals the ranked vote decided
    colours = [GRADE_COLOURS[grade] for grade in vote["grades"]]
    direction = "left" if lang == "ar" else "right"  # from the start edge of the page
    expected = (
        f"linear-gradient(to {direction}, {colours[0]} 0.00%, {colours[0]} 37.50%, "
        f"{colours[1]} 37.50%, {colours[1]} 50.00%, {colours[4]} 50.00%, {colours[4]} 100.00%)"
    )
    assert expected in bars
    # Its counts as text, for the eye and for a screen reader.
    assert re.search(
        r'<p class="merit-legend">[^<]* 3 · [^<]* 1 · [^<]* 0 · [^<]* 0 · [^<]* 4', html
    )


def _phone_photo() -> bytes:
    """A 1600×1200 JPEG, as proposals.media keeps an upload."""
    image = Image.effect_noise((1600, 1200), 40).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82)
    return out.getvalue()


async def test_a_version_keeps_its_photos_as_printed_and_its_pdf_embeds_them_as_kept(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, status=ADOPTED)
    original = _phone_photo()
    media = (
        await Media.insert(
            Media(
                proposal=proposal,
                kind="photo",
                token="a-phone-photo",
                content_type="image/jpeg",
                data=original,
                size=len(original),
                publication_consent_at=datetime.now(UTC),
            )
        ).returning(Media.id)
    )[0]["id"]
    brief = await add_draft(world.table_a)
    await BriefItem.update({BriefItem.photo: media}).where(BriefItem.brief == brief["id"])
    facilitator = world.users["facilitator_a"]
    who = Principal(
        user_id=facilitator, table_roles={world.table_a["id"]: "facilitator"}, verified=True
    )
    number = await services.publish_version(who, brief)
    kept = bytes((await BriefPhoto.select(BriefPhoto.data).first())["data"])
    with Image.open(io.BytesIO(kept)) as image:
        assert image.format == "JPEG"
        assert max(image.size) == PRINTED_PHOTO_SIDE
    assert len(kept) < len(original) / 4
    # The version's page shows its copy…
    shown = await client.get(f"/briefs/{brief['slug']}/v/{number}/photos/{media}")
    assert shown.status_code == 200
    assert shown.content == kept
    # …and its PDF embeds it as it is: no photo decoded and encoded again at each rendering.
    _brief_row, version = await services.version(brief["slug"], number)
    document, _shown = await services.read(version, "fr")
    content = await stored.version_file(
        brief["slug"], number, document, "fr", "pdf", await services.photos(version["id"])
    )
    embedded = [
        image.read_raw_bytes()
        for page in pikepdf.open(io.BytesIO(content)).pages
        for image in page.get_images().values()
        if image.get("/Filter") == "/DCTDecode"
    ]
    assert kept in embedded


async def test_a_brief_is_rendered_with_no_cycle_collection(monkeypatch) -> None:
    document, photos = await published()
    collections: list[int] = []

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    monkeypatch.setattr(gc, "callbacks", [*gc.callbacks, counted])
    threshold = gc.get_threshold()
    gc.set_threshold(1)  # a collection at each allocation, were the collector on
    try:
        content = pdf.render_brief(snapshot.localised(document, "ar"), "ar", photos=photos)
    finally:
        gc.set_threshold(*threshold)
    assert content.startswith(b"%PDF")
    assert collections == []
    assert gc.isenabled()  # and on again afterwards
