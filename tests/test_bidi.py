"""Mixed scripts: every name, title, place and date a person wrote sits in its own isolate.

Without one, the Unicode bidi algorithm mixes the user's text with the sentence around it: on a
French page "Proposée par يوسف · 23 oct. 2026" shows as "Proposée par 23 · يوسف oct. 2026", on an
Arabic one "Nadia B." shows as ".Nadia B" and "13014 Marseille" as "Marseille 13014". The main
pages are rendered in French and in Arabic with user text in both scripts, parsed, and each
occurrence of that text must be the whole text of an isolating element: <bdi>, an element with a
dir attribute (an option, a heading, a link...), an SVG <text> with its own direction, an element
of a class the stylesheet isolates, or a run between FSI and PDI characters (where no markup can
go). PDFs are checked the WeasyPrint way: it ignores dir="auto" and <bdi>, so their isolates carry
an explicit dir="ltr" or dir="rtl", and the page counter reads "1 / 2" in Arabic too.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from babel.dates import format_date
from httpx import AsyncClient
from markupsafe import Markup
from pypdf import PdfReader

from accounts.models import User
from exports import pdf as exports_pdf
from exports import services as briefs
from meetings import services as meetings
from proposals.models import Comment
from tables.services import get_table
from tests.factories import (
    FLAMANTS_SQUARE,
    add_proposal,
    add_user,
    build_world,
    draw_district,
    post_form,
    publish_brief,
    seat,
    sign_in,
)
from voix import i18n
from voix.settings import PROJECT_ROOT
from votes import charts
from votes import services as votes
from votes.models import VoteOption

# User text in both scripts; none is a part of another, but "13014 Marseille" is a part of the
# address (longer strings are matched first, so the address is checked as a whole).
ORGANISATION = "Avec Nous"
TABLE = "Flamants Iris"
POSTCODE = "13014 Marseille"
DISTRICT = "حي الفلامان"
YOUSSEF = "يوسف"
NADIA = "Nadia B."
MEHDI = "Mehdi (adulte relais)"
FRENCH_TITLE = "Réparer l'ascenseur de la tour G."
ARABIC_TITLE = "حاويات نفايات إضافية قرب السوق"
SECOND_ARABIC_TITLE = "مقاعد في الظل أمام المدرسة"
ARABIC_QUESTION = "هل نضع حاويات إضافية قرب السوق؟"
FRENCH_QUESTION = "Quelle priorité pour 2027 ?"
MEETING_TITLE = "Réunion des Flamants : budget 2027"
NEXT_MEETING_TITLE = "اجتماع الطاولة المقبل"
PLACE = "Centre social Flamants-Iris"
ADDRESS = "12 avenue Salvador Allende, 13014 Marseille"
AGENDA_ITEM = "نقاط متفرقة"
COMMENT = "المصعد معطل منذ شهر."
MINUTES_BODY = "اتفقت الطاولة على الحاويات."
BRIEF_TITLE = "أولويات سكان الفلامان"
ADDRESSED_TO = "Conseil citoyen du 14e."
CREATED = datetime(2026, 10, 23, 12, 0, tzinfo=UTC)

USER_TEXT = [
    ORGANISATION,
    TABLE,
    POSTCODE,
    DISTRICT,
    YOUSSEF,
    NADIA,
    MEHDI,
    FRENCH_TITLE,
    ARABIC_TITLE,
    SECOND_ARABIC_TITLE,
    ARABIC_QUESTION,
    FRENCH_QUESTION,
    MEETING_TITLE,
    NEXT_MEETING_TITLE,
    PLACE,
    ADDRESS,
    AGENDA_ITEM,
    COMMENT,
    MINUTES_BODY,
    BRIEF_TITLE,
    ADDRESSED_TO,
]


def dates(lang: str) -> list[str]:
    """The proposals' creation date as pages write it in `lang`, long and medium."""
    return [format_date(CREATED, form, locale=lang) for form in ("long", "medium")]


# The checker ------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
SKIPPED = {"head", "script", "style", "template"}  # no text shown in the page's flow
ISOLATES = ("\u2068", "\u2066", "\u2067")  # FSI, LRI, RLI; each closed by PDI
PDI = "\u2069"


def isolating_classes() -> set[str]:
    """Classes the stylesheet isolates (`unicode-bidi: isolate`), read from app.css itself."""
    css = (PROJECT_ROOT / "voix" / "static" / "app.css").read_text(encoding="utf-8")
    found = set()
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        if re.search(r"unicode-bidi:\s*(isolate|plaintext)", body):
            found.update(re.findall(r"^\s*\.([\w-]+)\s*$", selectors.replace(",", "\n"), re.M))
    return found


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class Tree(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.stack = [self.root]
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}, self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if any(node.tag == tag for node in self.stack[1:]):
            while self.stack.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _squash(text: str) -> str:
    return " ".join(text.replace(PDI, "").translate({ord(c): None for c in ISOLATES}).split())


def _isolating(node: Node, classes: set[str], pdf: bool) -> bool:
    if node.tag == "html":
        return False  # the page's own direction isolates nothing from the page
    if node.tag == "text" and "direction" in node.attrs:
        return True  # SVG text: a line of its own (the charts even write Arabic in visual order)
    if pdf:  # WeasyPrint: only an explicit direction counts
        return node.attrs.get("dir") in ("ltr", "rtl")
    return (
        node.tag == "bdi"
        or "dir" in node.attrs
        or bool(classes & set(node.attrs.get("class", "").split()))
    )


def unisolated(markup: str, needles: list[str], *, pdf: bool = False) -> tuple[list[str], set[str]]:
    """(problems, needles found): each occurrence of a needle in the text must be the whole text
    of its nearest isolating element, or sit between an isolate character and PDI."""
    classes = set() if pdf else isolating_classes()
    ordered = sorted(set(needles), key=len, reverse=True)
    problems: list[str] = []
    found: set[str] = set()

    def visit(node: Node) -> None:
        if node.tag in SKIPPED:
            return
        in_svg = node.tag == "svg" or any(a.tag == "svg" for a in ancestors(node))
        if in_svg and node.tag in ("title", "desc"):
            return  # an SVG's accessible name and tooltips: not drawn in the flow
        for child in node.children:
            if isinstance(child, Node):
                visit(child)
            else:
                check(node, child)

    def ancestors(node: Node) -> list[Node]:
        chain = []
        while node.parent is not None:
            node = node.parent
            chain.append(node)
        return chain

    def check(parent: Node, text: str) -> None:
        taken = [False] * len(text)
        for needle in ordered:
            start = text.find(needle)
            while start != -1:
                end = start + len(needle)
                if not any(taken[start:end]):
                    taken[start:end] = [True] * len(needle)
                    found.add(needle)
                    if not (start and text[start - 1] in ISOLATES and text[end : end + 1] == PDI):
                        judge(parent, needle, text)
                start = text.find(needle, end)

    def judge(parent: Node, needle: str, text: str) -> None:
        node: Node | None = parent
        while node is not None and not _isolating(node, classes, pdf):
            node = node.parent
        where = f"<{parent.tag}> “{_squash(text)[:90]}”"
        if node is None:
            problems.append(f"{needle!r} is not isolated, in {where}")
        elif _squash(node.text()) != _squash(needle):
            problems.append(
                f"{needle!r} shares its isolate <{node.tag} {node.attrs}> with other text: "
                f"“{_squash(node.text())[:90]}”"
            )

    visit(Tree(markup).root)
    return problems, found


def test_the_checker_finds_text_left_in_the_sentence() -> None:
    """The check can fail: a name inside a sentence, a heading, an option, a PDF's auto."""
    page = (
        '<html dir="rtl"><head><title>Nadia B.</title></head><body>'
        "<p>قدّمه Nadia B. · 20 أكتوبر 2026</p>"
        "<p>قدّمه <bdi>Nadia B.</bdi></p>"
        '<h1 dir="auto">Nadia B. <span>et les autres</span></h1>'
        "<select><option>Nadia B.</option><option>&#x2068;Nadia B.&#x2069; — 1</option></select>"
        '<svg><title>Nadia B.</title><text direction="ltr">Nadia B.</text><text>Nadia B.</text></svg>'
        "</body></html>"
    )
    problems, found = unisolated(page, [NADIA])
    assert found == {NADIA}
    assert len(problems) == 4, problems  # the sentence, the shared h1, the option, the SVG text
    assert "not isolated, in <p>" in problems[0]
    assert "shares its isolate <h1" in problems[1]
    pdf_page = '<html dir="rtl"><body><p>قدّمه <bdi dir="auto">Nadia B.</bdi> <bdi dir="ltr">Nadia B.</bdi></p></body></html>'
    problems, _ = unisolated(pdf_page, [NADIA], pdf=True)
    assert len(problems) == 1, problems


# The world: user text in both scripts, through the real forms --------------------------------


@dataclass
class Mixed:
    world: Any
    french: int
    arabic: int
    yes_no: int
    judged: int
    meeting: int
    next_meeting: int
    brief: str


async def _id_of(response: Any) -> int:
    assert response.status_code == 303, response.text[-2000:]
    return int(response.headers["location"].rsplit("/", 1)[1])


async def mixed_world(client: AsyncClient) -> Mixed:
    world = await build_world()
    facilitator = world.users["facilitator_a"]
    await User.update({User.display_name: MEHDI}).where(User.id == facilitator)
    await draw_district(world.table_a, FLAMANTS_SQUARE, name=DISTRICT)
    youssef = await add_user("youssef", YOUSSEF)
    nadia = await add_user("nadia", NADIA)
    for user in (youssef, nadia):
        await seat(user, world.table_a)
    french = await add_proposal(world.table_a, FRENCH_TITLE, author=youssef, created_at=CREATED)
    arabic = await add_proposal(
        world.table_a,
        ARABIC_TITLE,
        author=nadia,
        recorded_by=facilitator,
        language="ar",
        body="الحاويات الموجودة تمتلئ بسرعة يوم السوق.",
        created_at=CREATED,
    )
    second = await add_proposal(
        world.table_a, SECOND_ARABIC_TITLE, author=youssef, language="ar", created_at=CREATED
    )
    await Comment.insert(
        Comment(proposal=french, author=nadia, body=COMMENT, created_at=CREATED),
        Comment(proposal=french, author=youssef, body="Merci à tous !", created_at=CREATED),
    )

    # A meeting held, with minutes; another to come.
    await sign_in(client, facilitator)
    today = datetime.now(i18n.LOCAL_TIMEZONE).date()
    meeting_form = {
        "title": MEETING_TITLE,
        "date": (today - timedelta(days=1)).isoformat(),
        "held": "yes",  # entered after the fact, as the form allows
        "start": "18:00",
        "end": "20:00",
        "place": PLACE,
        "address": ADDRESS,
        "languages": ["fr", "ar"],
        "agenda": f"Accueil\n{AGENDA_ITEM}",
    }
    meeting = await _id_of(await post_form(client, "/tables/flamants-iris/meetings", meeting_form))
    upcoming = {**meeting_form, "title": NEXT_MEETING_TITLE, "held": ""}
    upcoming["date"] = (today + timedelta(days=7)).isoformat()
    next_meeting = await _id_of(await post_form(client, "/tables/flamants-iris/meetings", upcoming))

    # A vote for or against, and a vote by majority judgment, both closed.
    yes_no = await _id_of(
        await post_form(client, f"/proposals/{arabic}/votes", {"question": ARABIC_QUESTION})
    )
    judged = await _id_of(
        await post_form(
            client,
            "/tables/flamants-iris/votes",
            {"question": FRENCH_QUESTION, "proposals": [str(french), str(second)]},
        )
    )
    await post_form(client, f"/meetings/{meeting}/agenda", {"vote": str(yes_no)})
    options = [
        row["id"]
        for row in await VoteOption.select(VoteOption.id)
        .where(VoteOption.vote == judged)
        .order_by(VoteOption.position)
    ]
    for voter, choice in ((youssef, "yes"), (nadia, "yes"), (world.users["resident_a"], "no")):
        await sign_in(client, voter)
        cast = await post_form(client, f"/votes/{yes_no}/ballot", {"choice": choice})
        assert cast.status_code in (200, 303), cast.text[-2000:]
        grades = {f"grade-{options[0]}": "1", f"grade-{options[1]}": "3"}
        cast = await post_form(client, f"/votes/{judged}/ballot", grades)
        assert cast.status_code in (200, 303), cast.text[-2000:]
    await sign_in(client, facilitator)
    for vote in (yes_no, judged):
        closed = await post_form(client, f"/votes/{vote}/close", {})
        assert closed.status_code == 303, closed.text[-2000:]

    for action in ("open", "close"):
        done = await post_form(client, f"/meetings/{meeting}/{action}", {})
        assert done.status_code == 303, done.text[-2000:]
    published = await post_form(
        client,
        f"/meetings/{meeting}/minutes",
        {
            "body": MINUTES_BODY,
            "action": "publish",
            "votes": [str(yes_no)],
            "proposals": [str(french)],
        },
    )
    assert published.status_code == 303, published.text[-2000:]

    slug = await publish_brief(
        world.table_a,
        world.users["facilitator_a"],
        title=BRIEF_TITLE,
        addressees=(ADDRESSED_TO,),
        introduction="La table a voté.",
    )
    return Mixed(world, french, arabic, yes_no, judged, meeting, next_meeting, slug)


# Pages whose templates this change could not reach (others were changing them): expected to
# fail (xfail), and a failure once they isolate their text, so that the entry is then removed.
WAITING: dict[str, str] = {}


def _pages(mixed: Mixed) -> dict[str, tuple[str, list[str]]]:
    """name → (URL, user text that must be on the page)."""
    return {
        "home": ("/", [ORGANISATION, TABLE, POSTCODE, DISTRICT, MEHDI, NEXT_MEETING_TITLE, PLACE]),
        "table": (
            "/tables/flamants-iris",
            [
                *(ORGANISATION, TABLE, POSTCODE, DISTRICT, FRENCH_TITLE, ARABIC_TITLE, YOUSSEF),
                *(NADIA, MEHDI, ARABIC_QUESTION, FRENCH_QUESTION, NEXT_MEETING_TITLE, PLACE),
                *(BRIEF_TITLE, ADDRESSED_TO),
            ],
        ),
        "proposal": (
            f"/proposals/{mixed.french}",
            [TABLE, FRENCH_TITLE, YOUSSEF, NADIA, COMMENT, FRENCH_QUESTION, SECOND_ARABIC_TITLE],
        ),
        "proposal-ar": (
            f"/proposals/{mixed.arabic}",
            [TABLE, ARABIC_TITLE, NADIA, MEHDI, ARABIC_QUESTION],
        ),
        "vote": (f"/votes/{mixed.yes_no}", [TABLE, ARABIC_QUESTION]),
        "vote-judged": (
            f"/votes/{mixed.judged}",
            [FRENCH_QUESTION, FRENCH_TITLE, SECOND_ARABIC_TITLE],
        ),
        "meeting": (
            f"/meetings/{mixed.meeting}",
            [TABLE, MEETING_TITLE, PLACE, ADDRESS, AGENDA_ITEM],
        ),
        "meeting-next": (  # its agenda form lists the table's proposals and votes
            f"/meetings/{mixed.next_meeting}",
            [TABLE, NEXT_MEETING_TITLE, FRENCH_TITLE, ARABIC_TITLE],
        ),
        "brief": (
            f"/briefs/{mixed.brief}",
            [ORGANISATION, TABLE, BRIEF_TITLE, ADDRESSED_TO, ARABIC_TITLE],
        ),
        "minutes": (
            f"/meetings/{mixed.meeting}/minutes",
            [TABLE, MEETING_TITLE, MINUTES_BODY, ARABIC_QUESTION, FRENCH_TITLE],
        ),
    }


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_user_text_is_isolated_on_the_main_pages(client: AsyncClient, lang: str) -> None:
    mixed = await mixed_world(client)
    await sign_in(client, mixed.world.users["facilitator_a"])
    failures: dict[str, list[str]] = {}
    for name, (url, expected) in _pages(mixed).items():
        response = await client.get(url, params={"lang": lang})
        assert response.status_code == 200, (url, response.status_code)
        assert f'<html lang="{lang}"' in response.text
        problems, found = unisolated(response.text, USER_TEXT + dates(lang))
        missing = set(expected) - found
        assert not missing, f"{name}: expected on the page, not found: {missing}"
        if name in ("table", "proposal"):
            assert found & set(dates(lang)), f"{name}: the proposal's date is not shown"
        if problems:
            failures[name] = problems
    waiting = {name for name in failures if name in WAITING}
    others = {name: problems for name, problems in failures.items() if name not in WAITING}
    assert not others, "\n".join(f"{n}: {p}" for n, problems in others.items() for p in problems)
    for name in sorted(failures):  # every problem, for whoever fixes them (pytest -rxX -s)
        print(f"[{lang}] {name}:", *failures[name], sep="\n  ")
    fixed = set(WAITING) - set(failures)
    assert not fixed, f"isolated now: take {sorted(fixed)} out of WAITING"
    if waiting:
        pytest.xfail(
            "isolation still missing in templates outside this change: "
            + "; ".join(f"{n} ({WAITING[n]}): {failures[n][0]}" for n in sorted(waiting))
        )


# PDFs: WeasyPrint's way ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_user_text_is_isolated_in_the_pdfs(client: AsyncClient, lang: str) -> None:
    mixed = await mixed_world(client)
    table = await get_table("flamants-iris")
    meeting = await meetings.get(mixed.meeting)
    (judged,) = await votes.with_results([await votes.get(mixed.judged)])
    rows = await meetings.attendance(mixed.meeting)
    minutes = await meetings.published_minutes(mixed.meeting)
    assert minutes is not None
    rendered = {
        "brief": exports_pdf._html(
            "exports/pdf/brief.html",
            lang,
            **exports_pdf.brief_context(
                (await briefs.read((await briefs.version(mixed.brief))[1], lang))[0]
            ),
        ),
        "sign-in sheet": exports_pdf._html(
            "exports/pdf/sign_in_sheet.html",
            lang,
            meeting=meeting,
            table=table,
            rows=[*rows, {"shown_name": NADIA, "method": "walk_in", "checked_in_at": CREATED}],
            blank=False,
            spare=2,
        ),
        "minutes": exports_pdf._html(
            "exports/pdf/minutes.html",
            lang,
            meeting=meeting,
            table=table,
            minutes=minutes,
            html=await meetings.shown_html(minutes),
            links=await meetings.minutes_links(minutes["id"]),
            present=len(rows),
        ),
        "poster": exports_pdf._html(
            "exports/pdf/poster.html",
            lang,
            meeting=meeting,
            table=table,
            agenda=await meetings.agenda(mixed.meeting),
            sections=[  # as render_poster puts them: one per language of the meeting
                Markup(  # noqa: S704 — rendered by the project's autoescaping environment
                    exports_pdf._html(
                        "exports/pdf/poster_section.html",
                        code,
                        meeting=meeting,
                        original_title=meeting["title"],
                        table=table,
                    )
                )
                for code in ("fr", "ar")
            ],
            agendas=[  # the agenda, once: nobody translated it
                Markup(  # noqa: S704 — as above
                    exports_pdf._html(
                        "exports/pdf/poster_agenda.html",
                        lang,
                        agenda=await meetings.agenda(mixed.meeting),
                    )
                )
            ],
            qr="",
            url="",
        ),
        "paper ballot": exports_pdf._html(
            "exports/pdf/paper_ballot.html",
            lang,
            vote=judged,
            options=judged["options"],
            table=table,
            layout="a4",
            sheets=[range(1)],
            pictograms={},
        ),
        "login card": exports_pdf._html(
            "exports/pdf/card.html",
            lang,
            name=NADIA,
            table_name=table["name"],
            organisation=table["organisation_name"],
            code="ABCD-EFGH",
            qr="",
        ),
    }
    needles = [text for text in USER_TEXT if text not in (MEHDI,)]
    failures = []
    for name, markup in rendered.items():
        problems, found = unisolated(markup, needles, pdf=True)
        assert TABLE in found, (name, found)
        failures += [f"{name}: {problem}" for problem in problems]
    assert not failures, "\n".join(failures)


async def test_the_arabic_page_counter_reads_one_of_two(client: AsyncClient) -> None:
    mixed = await mixed_world(client)
    await sign_in(client, mixed.world.users["facilitator_a"])
    response = await client.get(f"/briefs/{mixed.brief}/pdf/ar")
    assert response.status_code == 200
    pages = PdfReader(io.BytesIO(response.content)).pages
    count = len(pages)
    assert count >= 2
    # The cover has no number; every other page reads "n / N", never "N / n".
    for number, page in enumerate(pages[1:], start=2):
        assert f"{number} / {count}" in page.extract_text(), number
    assert f"{count} / 2" not in pages[1].extract_text()


# Results: for, against, abstain each their own colour ----------------------------------------


def test_the_result_bars_use_the_charts_three_colours(client: AsyncClient) -> None:
    from voix.web import build_environment

    environment = build_environment()
    template = environment.from_string(
        '{% from "macros.html" import results %}{{ results({"yes": 6, "no": 3, "abstain": 1}) }}'
    )
    token = i18n.current_language.set("fr")
    try:
        french = template.render()
    finally:
        i18n.current_language.reset(token)
    fills = re.findall(r'<rect x="([\d.]+)" width="([\d.]+)" height="12" fill="(#\w+)"', french)
    assert [fill for _, _, fill in fills] == list(charts.YES_NO_COLOURS)
    assert [(float(x), float(w)) for x, w, _ in fills] == [(0, 60), (0, 30), (0, 10)]
    assert "<meter" not in french
    for colour in charts.YES_NO_COLOURS:  # each bar stands out from the page and from its track
        assert charts.contrast_ratio(colour, charts.WHITE) >= 3, colour
        assert charts.contrast_ratio(colour, charts.TRACK) >= 3, colour
    assert len(set(charts.YES_NO_COLOURS)) == 3
    for label in ("Pour", "Contre", "Abstention"):  # the answer is said in words too
        assert f"<dt>{label}</dt>" in french

    token = i18n.current_language.set("ar")
    try:
        arabic = template.render()
    finally:
        i18n.current_language.reset(token)
    fills = re.findall(r'<rect x="([\d.]+)" width="([\d.]+)" height="12" fill="(#\w+)"', arabic)
    assert [(float(x), float(w)) for x, w, _ in fills] == [(40, 60), (70, 30), (90, 10)]
