"""axe-core on every page people see, in a real browser: WCAG 2.0 and 2.1, levels A and AA.

The pages are the GET rows of tests/test_routes.py (every route of the app has one, so a new
page is checked here without editing this file), their paths naming the objects of the route
walk's world (tests/routes_world.py). Each page is visited by those of PERSONS it lets in, in
French and in Arabic (right to left): anonymous, resident A, facilitator A (who signs in
through the code step with a TOTP code), and, for the pages none of them may see, coordinator
A. What answers something other than HTML (PDF, JSON, calendar, GeoJSON, static files) is no
page; a page that sends elsewhere is checked where it lands, once per person and language.

axe-core is the axe.min.js that axe-playwright-python ships (a pinned dev dependency), added
to each document by an init script: nothing is fetched from anywhere else. Any violation of
impact serious or critical fails, with its rule, impact, target and page; every violation,
of any impact, is written to test-output/<database>/axe.json for people to read.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest

from accounts import mfa
from accounts.models import User
from accounts.services import load_principal, open_session, session_id_of
from accounts.totp import generate_totp_secret
from meetings import room
from meetings.models import Tablet
from proposals import discussion
from proposals import services as proposals
from proposals.models import Proposal
from tests.conftest import DATABASE_KIND
from tests.factories import FLAMANTS_SQUARE, add_proposal, draw_district
from tests.routes_world import PERSONS, Person, RouteWorld, build_route_world
from tests.servers import replica
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, OUTPUT, fr
from tests.test_routes import PASS, ROWS, Row, _default_url
from voix import crypto
from voix.middleware import LANGUAGE_COOKIE
from voix.web import SESSION_COOKIE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="NOTICE: Chromium is not installed (apt-get install chromium): "
        "the accessibility check (axe-core) was skipped",
    ),
    # The markup does not depend on the database: the pages are checked once, on SQLite (the
    # route walk and the journeys run on both).
    pytest.mark.skipif(
        DATABASE_KIND == "postgres",
        reason="NOTICE: axe-core runs on the SQLite half only: the pages' markup is the same",
    ),
]

LANGUAGES = ("fr", "ar")
# Who visits: the first three every page they may see, the others only the pages none before
# them may see (a coordinator's audit log and legal texts).
VISITORS = ("anonymous", "resident_a", "facilitator_a")
FOR_THE_REST = ("coordinator_a", "admin")
FAILING_IMPACTS = ("serious", "critical")
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
PAGES_AT_ONCE = 4  # pages checked at the same time, over all persons and languages
BUSY_RETRIES = 20  # a 503 from the server's full worker pool is asked again, so many times
# Pages no GET row shows: the error pages (voix/templates/errors), as a person meets them.
ERROR_PAGES = (
    ("anonymous", "not found", "/no-such-page"),
    ("resident_a", "refused", "/tables/{slug}/residents"),
)


@dataclass(frozen=True)
class Finding:
    rule: str
    impact: str
    target: str
    page: str  # the path that was checked (where the request landed)
    asked: str  # the row's route, so a failure names the route to look at

    def line(self, seen_by: list[str]) -> str:
        return (
            f"{self.rule} ({self.impact}) at {self.target} on {self.page} "
            f"[route {self.asked}; seen by {', '.join(seen_by)}]"
        )


@dataclass
class Report:
    findings: dict[Finding, list[str]] = field(default_factory=lambda: defaultdict(list))
    checked: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    not_html: set[str] = field(default_factory=set)
    elsewhere: set[str] = field(default_factory=set)  # hosts the pages asked for (refused)
    # What axe could not decide alone (contrast over an image, say): for people to look at.
    to_review: Counter[str] = field(default_factory=Counter)
    engine: str = ""

    def add(self, who: str, asked: str, path: str, violations: list[dict[str, Any]]) -> None:
        self.checked[who].add(path)
        for violation in violations:
            for node in violation["nodes"]:
                finding = Finding(
                    rule=violation["id"],
                    impact=str(node.get("impact") or violation.get("impact")),
                    target=" >> ".join(str(part) for part in node["target"]),
                    page=path,
                    asked=asked,
                )
                self.findings[finding].append(who)

    def failing(self) -> list[str]:
        return sorted(
            finding.line(seen_by)
            for finding, seen_by in self.findings.items()
            if finding.impact in FAILING_IMPACTS
        )

    def by_rule(self) -> dict[str, int]:
        counts = Counter(f"{f.rule} ({f.impact})" for f in self.findings)
        return dict(sorted(counts.items()))


def pages_for(person: Person) -> list[Row]:
    """The GET rows this person gets past (the streams aside)."""
    return [
        row
        for row in ROWS
        if row.method == "GET" and not row.stream and row.expectation(person.name) == PASS
    ]


def row_path(row: Row) -> str:
    return row.url or _default_url(row.route)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def when_served(ask: Callable[[], Awaitable[Any]]) -> Any:
    """The answer, once the server's worker pool (maps, PDFs) has room: it says 503 with
    Retry-After while it is full, as it does to anyone in a busy hour."""
    for _ in range(BUSY_RETRIES):
        answer = await ask()
        status = answer.status if hasattr(answer, "status") else answer.status_code
        if status != 503:
            return answer
        await asyncio.sleep(min(float(answer.headers.get("retry-after") or 1), 5))
    return answer


async def run_axe(page: Any) -> dict[str, Any]:
    results: dict[str, Any] = await page.evaluate(
        "options => axe.run(document, options)", AXE_OPTIONS
    )
    return results


async def test_the_check_reports_what_axe_finds() -> None:
    """The check can fail: an image without a text and an unlabelled field are reported."""
    from axe_playwright_python.base import AXE_SCRIPT
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = await browser.new_context()
        await context.add_init_script(script=AXE_SCRIPT)
        page = await context.new_page()
        await page.set_content(
            '<!doctype html><html lang="fr"><head><title>Essai</title></head><body><main>'
            '<h1>Essai</h1><img src="data:,"><input type="text" name="q"></main></body></html>'
        )
        report = Report()
        report.add("test", "/", "/", (await run_axe(page))["violations"])
        await browser.close()
    rules = {line.split(" ")[0] for line in report.failing()}
    assert {"image-alt", "label"} <= rules, report.failing()


async def furnish(world: RouteWorld) -> None:
    """What pages show beyond the objects their paths name: table A's district drawn, with
    proposals placed in it (the static and the interactive maps), one written in Arabic, and a
    discussion (a comment and its reply, a support, a report)."""
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    await Proposal.update({Proposal.latitude: 43.329, Proposal.longitude: 5.41}).where(
        Proposal.id == world.objects["proposal"]
    )
    await add_proposal(
        world.table_a,
        "إصلاح المصاعد في البرج",
        body="المصاعد معطلة كل أسبوع.",
        language="ar",
        latitude=43.327,
        longitude=5.408,
    )
    resident = await load_principal(await open_session(world.users["resident_a"]))
    proposal = await proposals.get(world.objects["proposal"])
    await discussion.comment(resident, world.table_a, proposal, {"body": "Je suis d'accord."})
    comments = await discussion.comments(proposal["id"])
    await discussion.comment(
        world.manager,
        world.table_a,
        proposal,
        {"body": "Nous en parlons jeudi.", "parent": str(comments[0]["id"])},
    )
    await discussion.support(resident, world.table_a, proposal)
    await discussion.report(resident, world.table_a, proposal, {"reason": "Déjà proposé"})


async def test_no_serious_or_critical_violation_on_any_page() -> None:
    from axe_playwright_python.base import AXE_SCRIPT
    from playwright.async_api import BrowserContext, Page, async_playwright

    started = time.monotonic()
    world = await build_route_world()
    await furnish(world)
    # Facilitator A signs in with a TOTP code of a secret the test knows.
    secret = generate_totp_secret()
    await User.update(
        {User.totp_secret: crypto.encrypt(secret, mfa.TOTP), User.totp_last_step: None}
    ).where(User.id == world.users["facilitator_a"])
    persons = {person.name: person for person in PERSONS}
    # What each person asks for: (the row's label, the path with {objects}), then error pages.
    visits: dict[str, list[tuple[str, str]]] = defaultdict(list)
    covered: set[str] = set()
    for name in (*VISITORS, *FOR_THE_REST):
        rows = [
            row for row in pages_for(persons[name]) if name in VISITORS or row.label not in covered
        ]
        visits[name] += [(row.label, row_path(row)) for row in rows]
        covered |= {row.label for row in rows}
    for name, what, url in ERROR_PAGES:
        visits[name].append((f"error page: {what}", url))
    # A page someone may see and none of these may: a visitor is missing here.
    unseen = {
        row.label for row in ROWS if row.method == "GET" and not row.stream and row.access.allowed
    } - covered
    assert not unseen, f"no visitor of this test may see {sorted(unseen)}: add one"
    built = time.monotonic()

    report = Report()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with replica(dict(os.environ)) as base:
        async with async_playwright() as playwright:
            # Only this machine answers: the interactive maps ask the configured tile server.
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
            )

            def note_host(request: Any) -> None:
                if not request.url.startswith((base, "data:")):
                    report.elsewhere.add(urlsplit(request.url).netloc)

            async def context_for(lang: str, token: str | None) -> BrowserContext:
                context = await browser.new_context(locale="fr-FR" if lang == "fr" else lang)
                await context.add_init_script(script=AXE_SCRIPT)
                cookies = [{"name": LANGUAGE_COOKIE, "value": lang, "url": base}]
                if token:
                    cookies.append({"name": SESSION_COOKIE, "value": token, "url": base})
                await context.add_cookies(cookies)
                context.on("request", note_host)
                return context

            async def proved_session(user_id: int) -> str:
                """Facilitator A's session, proved at the code step with a TOTP code."""
                context = await context_for(LANGUAGES[0], await open_session(user_id))
                page = await context.new_page()
                await page.goto(f"{base}/login/verify?next=/")
                await page.get_by_label(fr("Code"), exact=True).fill(pyotp.TOTP(secret).now())
                await page.get_by_role("button", name=fr("Confirm"), exact=True).click()
                await page.wait_for_load_state()
                assert urlsplit(page.url).path == "/", page.url
                # Where the code step leads, with its message (a flash) on top.
                report.add(
                    "facilitator_a fr (after the code step)",
                    "POST /login/verify",
                    "/",
                    (await run_axe(page))["violations"],
                )
                cookies = [c for c in await context.cookies(base) if c["name"] == SESSION_COOKIE]
                await context.close()
                assert cookies, "no session after the code step"
                return cookies[0]["value"]

            contexts: dict[tuple[str, str], BrowserContext] = {}
            tokens: dict[str, str] = {}
            for name in [name for name in visits if visits[name]]:
                person = persons[name]
                token = None
                if person.user is not None and name == "facilitator_a":
                    token = await proved_session(world.users[person.user])
                elif person.user is not None:
                    token = await open_session(world.users[person.user], verified=person.verified)
                if token is not None:
                    tokens[name] = token
                for lang in LANGUAGES:  # one session for both languages
                    contexts[(name, lang)] = await context_for(lang, token)

            gate = asyncio.Semaphore(PAGES_AT_ONCE)
            # By row label: does it answer a page? Asked once, by whoever comes first (so a PDF
            # is made once, not for each person and language).
            kinds: dict[str, asyncio.Future[bool]] = {}

            async def answers_html(name: str, url: str) -> bool:
                cookies = {SESSION_COOKIE: tokens[name]} if name in tokens else {}
                async with httpx.AsyncClient(cookies=cookies, timeout=120) as client:
                    answer = await when_served(lambda: client.get(url, follow_redirects=True))
                return answer.headers.get("content-type", "").startswith("text/html")

            async def check_view(
                page: Page, who: str, lang: str, asked: str, url: str, *, stays: str = ""
            ) -> None:
                """One view, once per person and language: where `url` lands, or, when it
                `stays` (a state of a page, not a place), at `url` itself under that name."""
                async with gate:
                    answer = await when_served(lambda: page.goto(url))
                    assert answer is not None
                    assert answer.status < 500, f"{url} answered {answer.status} to {who}"
                    path = path_of(page.url)
                    if stays:
                        assert path == path_of(url), f"{url} sent {who} to {path}"
                        path = f"{path} ({stays})"
                    if path in report.checked[who]:  # sent where this person was already
                        return
                    lang_attribute = await page.locator("html").get_attribute("lang")
                    assert lang_attribute == lang, f"{url} is in {lang_attribute} for {who}"
                    results = await run_axe(page)
                report.engine = results["testEngine"]["version"]
                report.add(who, asked, path, results["violations"])
                report.to_review.update(
                    {item["id"]: len(item["nodes"]) for item in results["incomplete"]}
                )

            async def check_all(name: str, lang: str) -> None:
                """The pages of one person in one language, one after the other in one tab."""
                context = contexts[(name, lang)]
                page: Page = await context.new_page()
                for asked, path_template in visits[name]:
                    url = base + path_template.format_map(world.objects)
                    if asked not in kinds:
                        kinds[asked] = asyncio.ensure_future(answers_html(name, url))
                    if not await kinds[asked]:
                        report.not_html.add(asked)
                        continue
                    await check_view(page, f"{name} {lang}", lang, asked, url)
                await page.close()

            async def check_tablet(lang: str) -> None:
                """The shared tablet of a vote held in the room (its pages refuse any other
                session): facilitator A's session made the tablet, as meetings.room makes one;
                its list of names, handed over (the ballot, in the voter's language), then
                locked until the facilitator's PIN."""
                token = await open_session(world.users["facilitator_a"], verified=True)
                made = await Tablet.insert(
                    Tablet(
                        session=await session_id_of(token),
                        vote=world.objects["vote_room"],
                        meeting=world.objects["meeting_room"],
                        pin_hash=crypto.keyed_hash("2468", room.TABLET_PIN),
                        started_at=datetime.now(UTC),
                    )
                ).returning(Tablet.id)
                context = await context_for(lang, token)
                page: Page = await context.new_page()
                who, tablet = f"tablet {lang}", f"{base}/votes/{world.objects['vote_room']}/tablet"
                await check_view(
                    page, who, lang, "GET /votes/{vote_id:int}/tablet", tablet, stays="names"
                )
                row = await Tablet.select().where(Tablet.id == made[0]["id"]).first()
                assert row is not None
                await room.hand_over(world.manager, row, world.objects["tablet_voter"], lang)
                ballot = f"{tablet}/ballot"
                await check_view(page, who, lang, "GET /votes/{vote_id:int}/tablet/ballot", ballot)
                await check_view(
                    page, who, lang, "GET /votes/{vote_id:int}/tablet", tablet, stays="PIN"
                )
                await context.close()

            await asyncio.gather(
                *(check_all(name, lang) for name, lang in contexts),
                *(check_tablet(lang) for lang in LANGUAGES),
            )
            await browser.close()
    finished = time.monotonic()

    pages = sorted({path for paths in report.checked.values() for path in paths})
    summary = {
        "axe-core": report.engine,
        "database": os.environ.get("VOIX_TEST_DATABASE", "sqlite"),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {"world": round(built - started, 1), "pages": round(finished - built, 1)},
        "views checked": sum(len(paths) for paths in report.checked.values()),
        "by person and language": {
            who: len(paths) for who, paths in sorted(report.checked.items())
        },
        "pages": pages,
        "not HTML": sorted(report.not_html),
        "other hosts asked (refused)": sorted(report.elsewhere),
        "violations by rule (nodes)": report.by_rule(),
        "to review by rule (nodes axe could not decide)": dict(sorted(report.to_review.items())),
        "violations": [
            {**finding.__dict__, "seen by": seen_by}
            for finding, seen_by in sorted(report.findings.items(), key=lambda i: i[0].line([]))
        ],
    }
    (OUTPUT / "axe.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))

    # The walk reached the pages: each person and language saw some, the facilitator most.
    for name in (*VISITORS, "tablet"):
        for lang in LANGUAGES:
            assert report.checked[f"{name} {lang}"], f"no page checked for {name} in {lang}"
    assert len(report.checked["facilitator_a fr"]) > len(report.checked["anonymous fr"])
    failing = report.failing()
    assert not failing, (
        f"{len(failing)} serious or critical accessibility violations (axe-core "
        f"{report.engine}, WCAG 2.1 A and AA):\n" + "\n".join(failing)
    )
