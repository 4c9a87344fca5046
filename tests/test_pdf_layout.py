"""Printed documents that hold up (issue 12): real WeasyPrint PDFs, read back page by page.

A sign-in sheet fills its pages (the column names on each, no last page holding only the
signatures or a handful of lines); a meeting entered after the fact says so on its sheet and
its minutes; the brief's map numbers its dots as the list numbers its proposals; a login card
stays one card whatever the name.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from pypdf import PdfReader

from exports import pdf, snapshot
from exports.services import brief_map
from meetings import services as meetings
from meetings.models import Meeting
from voix import i18n
from voix.i18n import catalog

from .factories import build_world, post_form, sign_in, t

# A meeting on a fixed day, so the figures of its date are known ones (9, 2026, 18, 20).
STARTS = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
MEETING = {
    "id": 1,
    "title": "Réunion de la table",
    "starts_at": STARTS,
    "ends_at": STARTS + timedelta(hours=2),
    "place": "Centre social Flamants-Iris",
    "address": "Avenue Alexandre Ansaldi, 13014 Marseille",
    "languages": ["fr", "ar"],
    "opened_at": STARTS,
    "after_the_fact": False,
    "started_late": False,
}
TABLE = {"name": "Les Flamants-Iris", "organisation_name": "Avec Nous", "postcode": "13014"}
# A page after the first holds more lines than this, or the sheet is badly cut.
FEW_LINES = 10
BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Whole numbers standing alone: not the hours and minutes of "18:04" or "6:04".
WHOLE_NUMBER = re.compile(r"(?<![\d:])\d+(?![\d:])")


def page_texts(content: bytes) -> list[str]:
    """Each page's text as poppler reads it (pdftotext -f N -l N), bidi marks left out."""
    count = len(PdfReader(io.BytesIO(content)).pages)
    texts = []
    for number in range(1, count + 1):
        done = subprocess.run(
            ["pdftotext", "-q", "-f", str(number), "-l", str(number), "-", "-"],
            input=content,
            capture_output=True,
            check=True,
        )
        texts.append(BIDI_MARKS.sub("", done.stdout.decode()))
    return texts


def line_numbers(text: str) -> list[int]:
    """The numbers of the sheet's lines on a page: its longest run of consecutive numbers
    (the names used here hold no figure; the page counter and the count of those present can
    add one at either end of the run, never more)."""
    numbers = sorted({int(found) for found in WHOLE_NUMBER.findall(text)})
    best: list[int] = []
    run: list[int] = []
    for number in numbers:
        run = [*run, number] if run and number == run[-1] + 1 else [number]
        best = max(best, run, key=len)
    return best


def squash(text: str) -> str:
    return " ".join(text.split())


def attendees(count: int) -> list[dict[str, Any]]:
    """Names without figures: "Résident Ab", "Résident Ac"…"""
    return [
        {
            "shown_name": f"Résident {chr(65 + i // 26)}{chr(97 + i % 26)}",
            "method": "walk_in",
            "checked_in_at": STARTS + timedelta(minutes=5),
        }
        for i in range(count)
    ]


def sheet(count: int, lang: str, *, blank: bool = False, **meeting: Any) -> bytes:
    return pdf.render_sign_in_sheet(
        {**MEETING, **meeting}, TABLE, attendees(count), blank=blank, lang=lang
    )


_page_lines: dict[str, int] = {}


def a_page_s_worth(lang: str) -> int:
    """How many lines of the table the first page of a long sheet holds."""
    if lang not in _page_lines:
        first = page_texts(sheet(80, lang))[0]
        numbers = line_numbers(first)
        assert numbers[0] <= 1, numbers
        _page_lines[lang] = numbers[-1]
    return _page_lines[lang]


def test_the_line_reader_counts_lines_and_nothing_else() -> None:
    text = "N° Nom Signature\n23 Résident Ab 18:04\n24\n25\n26\n27 personnes présentes\n2 / 2\n"
    assert line_numbers(text) == [23, 24, 25, 26, 27]  # the count of those present at an end
    assert line_numbers("18:00 18:01 18:02 6:03\n7\n") == [7]  # times are not lines


@pytest.mark.parametrize("lang", ["fr", "ar"])
@pytest.mark.parametrize(
    "case", ["none", "a page's worth less one", "a page's worth", "a bit more"]
)
def test_a_sign_in_sheet_fills_its_pages(lang: str, case: str) -> None:
    worth = a_page_s_worth(lang)
    assert worth > FEW_LINES + 5  # an A4 page of lines, or the sheet's layout broke
    count = {"none": 0, "a page's worth less one": worth - 1, "a page's worth": worth,
             "a bit more": worth + 3}[case]  # fmt: skip
    content = sheet(count, lang)
    pages = page_texts(content)
    whole = squash("\n".join(pages))

    for person in attendees(count):  # nobody dropped
        assert person["shown_name"] in whole, person["shown_name"]
    assert squash(t("Stamp of the organisation", lang)) in squash(pages[-1])
    lines = [line_numbers(text) for text in pages]
    last_line = max(numbers[-1] for numbers in lines)
    assert last_line >= count + pdf.SPARE_LEAST_PRESENT  # room for those not on the list
    if count == 0:
        assert len(pages) == 1
        assert last_line > FEW_LINES  # an empty sheet is a page of lines, not three
    else:
        assert len(pages) == 2, (case, len(pages))
    for number, (text, numbers) in enumerate(zip(pages, lines, strict=True), start=1):
        assert t("No.", lang) in text, number  # the column names, on every page
        if number > 1:
            # Never a page of a few lines, nor of the signatures alone.
            assert len(numbers) > FEW_LINES, (number, numbers)
    if len(pages) > 1:
        assert lines[1][0] <= lines[0][-1] + 2  # the lines follow on, none skipped


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_a_blank_sheet_of_a_page_s_worth_of_members_goes_on_full(lang: str) -> None:
    worth = a_page_s_worth(lang)
    pages = page_texts(sheet(worth, lang, blank=True))
    assert len(pages) == 2
    assert len(line_numbers(pages[1])) > FEW_LINES
    assert t("Checked in by", lang) not in pages[0]  # to sign, not a record of check-ins


# A meeting entered after the fact says so, on its sheet and in its minutes.

AFTER_THE_FACT = (
    "Meeting entered after the fact, on %(date)s: attendance was recorded afterwards, not in "
    "the room."
)


def day(moment: datetime, lang: str = "fr") -> str:
    """The day as the documents print it, in `lang`."""
    token = i18n.current_language.set(lang)
    try:
        return i18n.date(moment)
    finally:
        i18n.current_language.reset(token)


def notice(lang: str = "fr", **params: str) -> str:
    """The notice with its day; without, the words before the day, found in any notice."""
    text = catalog(lang).gettext(AFTER_THE_FACT)
    return squash(text % params if params else text.split("%(")[0])


SHEET = "exports/pdf/sign_in_sheet.html"


def text_of(content: bytes) -> str:
    return squash(" ".join(page_texts(content)))


def test_the_after_the_fact_notice_is_printed_with_its_day() -> None:
    entered = STARTS + timedelta(days=4)
    text = text_of(sheet(3, "fr", after_the_fact=True, opened_at=entered))
    assert notice(date=day(entered)) in text
    assert t("Time") not in text  # the time of the typing, days later: not printed
    usual = text_of(sheet(3, "fr"))
    assert notice() not in usual
    assert t("Time") in usual
    # In Arabic, the same sentence in the document (a PDF's text comes back in the order of
    # the line, not of the reading, when languages mix: read here in the markup).
    arabic = {**MEETING, "after_the_fact": True, "opened_at": entered}
    markup = squash(
        pdf._html(SHEET, "ar", meeting=arabic, table=TABLE, rows=[], blank=False, spare=1)
    )
    assert notice("ar") in markup
    assert day(entered, "ar") in markup
    markup = squash(
        pdf._html(SHEET, "ar", meeting=MEETING, table=TABLE, rows=[], blank=False, spare=1)
    )
    assert notice("ar") not in markup


async def _held(client: AsyncClient, world: Any, days_ago: float) -> int:
    """A meeting of last week opened `days_ago` after it began, one person ticked, closed,
    its minutes published."""
    await sign_in(client, world.users["facilitator_a"])
    day = (datetime.now(i18n.LOCAL_TIMEZONE) + timedelta(days=7)).date().isoformat()
    form = {"title": "Réunion de la table", "date": day, "start": "18:30", "end": "20:00",
            "place": "Centre social", "address": "12 avenue Salvador Allende, 13014 Marseille",
            "languages": ["fr"], "agenda": "Accueil"}  # fmt: skip
    made = await post_form(client, "/tables/flamants-iris/meetings", form)
    assert made.status_code == 303, made.text
    meeting_id = int(made.headers["location"].rsplit("/", 1)[1])
    starts = datetime.now(UTC) - timedelta(days=days_ago)
    await Meeting.update(
        {Meeting.starts_at: starts, Meeting.ends_at: starts + timedelta(hours=1.5)}
    ).where(Meeting.id == meeting_id)
    assert (await post_form(client, f"/meetings/{meeting_id}/open", {})).status_code == 303
    tick = f"/meetings/{meeting_id}/attendance/members/{world.users['resident_a']}"
    assert (await post_form(client, tick, {})).status_code == 303
    assert (await post_form(client, f"/meetings/{meeting_id}/close", {})).status_code == 303
    minutes = {"body": "La séance est ouverte.", "action": "publish"}
    published = await post_form(client, f"/meetings/{meeting_id}/minutes", minutes)
    assert published.status_code == 303, published.text
    return meeting_id


async def test_a_meeting_entered_after_the_fact_says_so_on_its_sheet_and_minutes(
    client: AsyncClient,
) -> None:
    world = await build_world()
    late = await _held(client, world, days_ago=3)
    meeting = await meetings.get(late)
    assert meeting["after_the_fact"]
    said = notice(date=day(meeting["opened_at"]))
    for document in ("sign-in-sheet.pdf", "minutes.pdf"):
        response = await client.get(f"/meetings/{late}/{document}")
        assert response.status_code == 200, document
        assert said in text_of(response.content), document

    on_time = await _held(client, world, days_ago=1 / 24)  # an hour ago: the same evening
    assert not (await meetings.get(on_time))["after_the_fact"]
    for document in ("sign-in-sheet.pdf", "minutes.pdf"):
        response = await client.get(f"/meetings/{on_time}/{document}")
        assert response.status_code == 200, document
        assert notice() not in text_of(response.content), document


# The brief's map: each dot carries its proposal's number in the list.

LEGEND = (
    "Each dot is an adopted proposal placed on the map; its number is the one in the list above."
)


def _brief(placed: dict[int, tuple[float, float]], lang: str = "fr") -> dict[str, Any]:
    """A brief's document (exports.snapshot) of four proposals, numbered 1 to 4."""
    items: list[dict[str, Any]] = [
        {"n": n, "id": 30 + n, "title": f"Proposition {name}", "body": "Texte.", "theme": theme,
         "language": "fr", "supports": 0, "created_at": STARTS, "latitude": None,
         "longitude": None, "district": "", "url": "", "photo": None, "vote": None,
         "option": None, "translations": {}}
        for n, name, theme in ((1, "une", "housing"), (2, "deux", "transport"),
                               (3, "trois", "health"), (4, "quatre", "youth"))
    ]  # fmt: skip
    for item in items:
        if item["n"] in placed:
            item["latitude"], item["longitude"] = placed[item["n"]]
    points = [
        {"id": i["n"], "theme": i["theme"], "latitude": i["latitude"], "longitude": i["longitude"]}
        for i in items
        if i["latitude"] is not None
    ]
    document = {
        "format": snapshot.FORMAT,
        "slug": "note",
        "version": 1,
        "published_at": STARTS,
        "language": "fr",
        "title": "Les priorités des habitants",
        "context": "",
        "context_html": "",
        "url": "http://127.0.0.1:8000/briefs/note/v/1",
        "table": {**TABLE, "districts": [{"name": "Les Flamants-Iris", "approximate": True}]},
        "addressees": [{"id": 1, "name": "Conseil citoyen", "service": "", "address": "",
                        "contact": ""}],
        "themes": snapshot.themes_of(items),
        "items": items,
        "map": json.loads(json.dumps(brief_map([], points))),  # as a version stores it
        "votes": [],
        "participation": None,
        "signatories": [],
    }  # fmt: skip
    return snapshot.localised(document, lang)


def _brief_html(document: dict[str, Any], lang: str) -> str:
    """The brief's HTML, its map's drawing (an image of its own, for the tagged PDF's figure)
    put back in the page where it is shown."""
    html = pdf._html("exports/pdf/brief.html", lang, **pdf.brief_context(document))
    return re.sub(
        r'src="data:image/svg\+xml;base64,([^"]+)"',
        lambda found: base64.b64decode(found[1]).decode(),
        html,
    )


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_brief_s_map_numbers_its_dots_as_the_list_numbers_its_proposals(lang: str) -> None:
    # The second and the fourth proposals are placed; the first and the third are not.
    document = _brief({2: (43.3400, 5.3900), 4: (43.3450, 5.3950)}, lang)
    html = _brief_html(document, lang)
    drawn = html[html.index("<svg") : html.index("</svg>")]
    assert document["map"] is not None
    assert "href" not in drawn  # nothing to follow, nothing fetched: a local drawing
    assert "http" not in drawn.replace("http://www.w3.org/", "")
    dots = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', drawn)
    numbers = re.findall(r'<text x="([\d.]+)" y="[\d.]+"[^>]*>(\d+)</text>', drawn)
    where = {
        str(point["id"]): (str(point["x"]), str(point["y"])) for point in document["map"]["points"]
    }
    assert sorted(numbers, key=lambda found: found[1]) == [
        (where["2"][0], "2"),  # the second of the list…
        (where["4"][0], "4"),  # …and the fourth, not "1" and "2"
    ]
    assert sorted(dots) == sorted(where.values())
    assert squash(catalog(lang).gettext(LEGEND)) in squash(html)

    if lang == "fr":  # Arabic mixed with the French of the demo comes back out of order
        assert squash(catalog(lang).gettext(LEGEND)) in text_of(pdf.render_brief(document, lang))


def test_the_brief_s_map_fans_out_proposals_at_one_place() -> None:
    """Three proposals at one place, one elsewhere: four numbers, none covering another on
    paper, the three tied to their place by a line."""
    place = (43.3400, 5.3900)
    document = _brief({1: place, 2: place, 3: place, 4: (43.3450, 5.3950)})
    html = _brief_html(document, "fr")
    drawn = html[html.index("<svg") : html.index("</svg>")]
    dots = [
        (float(x), float(y), float(r))
        for x, y, r in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)"', drawn)
    ]
    numbers = sorted(re.findall(r"<text [^>]*>(\d+)</text>", drawn))
    assert numbers == ["1", "2", "3", "4"]
    assert len(dots) == 4
    for n, (x, y, r) in enumerate(dots):
        for x2, y2, r2 in dots[n + 1 :]:
            assert math.dist((x, y), (x2, y2)) >= r + r2, "two numbers cover each other"
    # Tied by a line to where they are: the three to their place (the fourth too, its place
    # being the picture's corner: with no district drawn, the places make the picture).
    ties = Counter(re.findall(r'<line x1="([\d.]+)" y1="([\d.]+)"', drawn))
    assert sorted(ties.values()) == [1, 3]


# A login card is one card: never a second page, whatever the language or the name.


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
@pytest.mark.parametrize(
    "name", ["Nadia B.", "Marie-Christine Abdelkader-Fernandez de la Roche-Saint-Hilaire (Bât. G)"]
)
def test_a_login_card_is_one_card(lang: str, name: str) -> None:
    content = pdf.render_login_card(
        name=name,
        table_name="Les Flamants-Iris",
        organisation="Avec Nous",
        code="ABCD-EFGH-JKLM",
        url="http://testserver.local/card#ABCD-EFGH-JKLM",
        lang=lang,
    )
    pages = page_texts(content)
    assert len(pages) == 1
    assert "ABCD-EFGH-JKLM" in pages[0]
    assert (
        t("Keep this card to yourself. Lost? Ask your facilitator for a new one.", lang).split()[0]
        in pages[0]
    )
