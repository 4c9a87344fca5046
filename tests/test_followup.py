"""The follow-up: recording institutions' answers, who is overdue, the public pages, the wall
poster and the reminder letters, and who may do what.

Briefs are sent here by inserting the rows publishing makes (BriefSent, SentProposal), with
the proposals already transmitted, as exports.services.publish_version leaves them.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader

from audit.models import AuditEntry
from exports import snapshot
from exports.models import (
    Brief,
    BriefAddressee,
    BriefSent,
    BriefVersion,
    SentProposal,
    StoredPdf,
)
from followup import services
from followup.models import Response, ResponseItem
from proposals.discussion import STATUS_CHANGED, TRANSITION_FORBIDDEN
from proposals.models import ADOPTED, ANSWERED, DONE, REFUSED, TRANSMITTED, Proposal, StatusChange
from tables.models import Institution, Table
from tests.conftest import make_client
from tests.factories import World, add_proposal, build_world, csrf_token, post_form, sign_in, t
from voix import db
from voix.forms import NUMBER_RANGE, REQUIRED
from voix.i18n import LOCAL_TIMEZONE
from voix.web import SESSION_COOKIE

TITLES = ("Réparer les ascenseurs de la tour G", "Un abri pour l'arrêt de bus")


@dataclass
class Sent:
    world: World
    brief: dict[str, Any]
    proposals: list[int]
    institutions: list[int]

    @property
    def answer_url(self) -> str:
        return f"/tables/flamants-iris/follow-up/briefs/{self.brief['slug']}/answer"


async def add_institution(organisation: int, name: str, service: str = "") -> int:
    rows = await Institution.insert(
        Institution(
            organisation=organisation,
            name=name,
            service=service,
            address="BP 48014\n13567 Marseille Cedex 02",
        )
    ).returning(Institution.id)
    return int(rows[0]["id"])


async def send_brief(
    table: dict[str, Any],
    proposals: list[int],
    institutions: list[int],
    *,
    slug: str = "nos-priorites",
    title: str = "Nos priorités pour les Flamants",
    sent_at: datetime | None = None,
) -> dict[str, Any]:
    """A brief published once (version 1) and sent: the rows publishing makes."""
    sent_at = sent_at or datetime.now(UTC) - timedelta(days=3)
    rows = await Brief.insert(
        Brief(
            slug=slug,
            table=table["id"],
            title=title,
            addressed_to="Métropole, Logirem",
            version=1,
            language="fr",
            published_at=sent_at,
        )
    ).returning(Brief.id)
    brief_id = rows[0]["id"]
    await BriefVersion.insert(
        BriefVersion(
            brief=brief_id,
            number=1,
            published_at=sent_at,
            language="fr",
            title=title,
            document=snapshot.dumps({"format": snapshot.FORMAT, "title": title}),
        )
    )
    for position, institution in enumerate(institutions, start=1):
        await BriefAddressee.insert(
            BriefAddressee(brief=brief_id, institution=institution, position=position)
        )
        await BriefSent.insert(
            BriefSent(brief=brief_id, institution=institution, version=1, sent_at=sent_at)
        )
    for proposal in proposals:
        await SentProposal.insert(
            SentProposal(brief=brief_id, proposal=proposal, version=1, sent_at=sent_at)
        )
    return {"id": brief_id, "slug": slug, "title": title}


async def sent_world(**options: Any) -> Sent:
    world = await build_world()
    proposals = [
        await add_proposal(world.table_a, TITLES[0], status=TRANSMITTED),
        await add_proposal(world.table_a, TITLES[1], status=TRANSMITTED, theme="transport"),
    ]
    organisation = world.table_a["organisation"]
    institutions = [
        await add_institution(organisation, "Métropole Aix-Marseille", "Direction des transports"),
        await add_institution(organisation, "Logirem"),
    ]
    brief = await send_brief(world.table_a, proposals, institutions, **options)
    return Sent(world, brief, proposals, institutions)


def answer(sent: Sent, **fields: Any) -> dict[str, Any]:
    return {
        "institution": str(sent.institutions[0]),
        "received_on": (datetime.now(LOCAL_TIMEZONE).date()).isoformat(),
        "summary": "La Métropole étudie un abri pour l'arrêt Flamants.",
        "commitments": "Un abri posé avant l'été.",
        **fields,
    }


async def statuses(ids: list[int]) -> list[str]:
    rows = await Proposal.select(Proposal.id, Proposal.status).where(Proposal.id.is_in(ids))
    by_id = {row["id"]: row["status"] for row in rows}
    return [by_id[i] for i in ids]


async def nothing_recorded(sent: Sent, before: list[str]) -> None:
    assert await Response.count() == 0
    assert await ResponseItem.count() == 0
    assert await StatusChange.count() == 0
    assert await statuses(sent.proposals) == before
    assert not await AuditEntry.exists().where(AuditEntry.action == "response.recorded")


def nt(singular: str, plural: str, n: int) -> str:
    """The catalog's plural form, as pages show it (before escaping)."""
    from voix.i18n import catalog

    text = catalog("fr").ngettext(singular, plural or singular, n)
    return text % {"num": n} if "%(num)" in text else text


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (1200, 1600), (250, 250, 245))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (43.0, 20.0, 51.0)
    gps[3], gps[4] = "E", (5.0, 24.0, 30.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"bureau du directeur")
    return out.getvalue()


MINIMAL_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# Recording an answer


async def test_an_answer_moves_the_proposals_it_speaks_of_in_one_transaction(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    first, second = sent.proposals
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await post_form(
        client,
        sent.answer_url,
        answer(
            sent,
            **{f"proposal-{first}": "mentioned", f"proposal-{second}": ANSWERED},
            **{f"note-{second}": "Étude en cours"},
        ),
    )
    assert response.status_code == 303, response.text[-3000:]
    assert response.headers["location"] == "/tables/flamants-iris/follow-up"
    assert await statuses(sent.proposals) == [TRANSMITTED, ANSWERED]
    recorded = await Response.select().first()
    assert recorded["summary"].startswith("La Métropole étudie")
    assert recorded["recorded_by"] == sent.world.users["facilitator_a"]
    assert recorded["letter"] is None
    items = {
        row["proposal"]: row
        for row in await ResponseItem.select().where(ResponseItem.response == recorded["id"])
    }
    assert items[first]["status"] == ""
    assert (items[second]["status"], items[second]["note"]) == (ANSWERED, "Étude en cours")
    change = await StatusChange.select().where(StatusChange.proposal == second).first()
    assert (change["from_status"], change["to_status"]) == (TRANSMITTED, ANSWERED)
    assert change["reason"] == "Métropole Aix-Marseille"
    assert await StatusChange.count().where(StatusChange.proposal == first) == 0
    entry = await AuditEntry.select().where(AuditEntry.action == "response.recorded").first()
    assert entry["subject"] == "brief:nos-priorites"

    # Then the institution says it is done: answered → done, the next step.
    later = await post_form(
        client,
        sent.answer_url,
        answer(sent, summary="L'abri est posé.", **{f"proposal-{second}": DONE}),
    )
    assert later.status_code == 303, later.text[-3000:]
    assert await statuses(sent.proposals) == [TRANSMITTED, DONE]
    assert await Response.count() == 2

    # The summary and the commitments are public; the letter link is not there for them.
    client.cookies.clear()
    public = await client.get("/tables/flamants-iris/follow-up")
    assert public.status_code == 200
    assert "La Métropole étudie un abri" in public.text
    assert "Un abri posé avant l&#39;été." in public.text
    assert "/letter" not in public.text


@pytest.mark.parametrize(("before", "target"), [(TRANSMITTED, DONE), (TRANSMITTED, REFUSED)])
async def test_a_move_the_workflow_does_not_allow_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, before: str, target: str
) -> None:
    sent = await sent_world()
    first, second = sent.proposals
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await post_form(
        client,
        sent.answer_url,
        answer(sent, **{f"proposal-{first}": ANSWERED, f"proposal-{second}": target}),
    )
    assert response.status_code == 400
    refusal = t(
        TRANSITION_FORBIDDEN,
        current=t("Sent to the institution"),
        target=t("Carried out" if target == DONE else "Refused by the institution"),
    )
    assert refusal in response.text
    assert 'id="f-summary"' in response.text  # the form again, with what was typed
    assert "La Métropole étudie un abri" in response.text
    await nothing_recorded(sent, [before, before])


async def test_an_adopted_proposal_is_not_answered_before_it_is_sent(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    await Proposal.update({Proposal.status: ADOPTED}).where(Proposal.id == sent.proposals[0])
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await post_form(
        client, sent.answer_url, answer(sent, **{f"proposal-{sent.proposals[0]}": ANSWERED})
    )
    assert response.status_code == 400
    await nothing_recorded(sent, [ADOPTED, TRANSMITTED])


async def test_bad_input_is_refused_with_translated_errors_and_nothing_stored(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    other = await add_institution(sent.world.table_a["organisation"], "Préfecture")
    await sign_in(client, sent.world.users["facilitator_a"])
    tomorrow = datetime.now(LOCAL_TIMEZONE).date() + timedelta(days=1)
    cases = [
        ({"summary": ""}, t(REQUIRED)),
        ({"received_on": tomorrow.isoformat()}, t(services.RECEIVED_IN_FUTURE)),
        ({"received_on": "30/11/2026"}, t("Please give the date as day, month and year (for example 2026-12-03).")),
        ({"institution": str(other)}, t(services.NOT_SENT_TO)),
        ({"received_on": "2020-01-01"}, "2020"),
        ({"look_again_on": "2020-01-01"}, t(services.LOOK_AGAIN_TOO_EARLY)),
        ({f"proposal-{sent.proposals[0]}": "flying"}, t("Please choose one of the options offered.")),
    ]  # fmt: skip
    for fields, message in cases:
        response = await post_form(client, sent.answer_url, answer(sent, **fields))
        assert response.status_code == 400, fields
        assert message in response.text, fields
    await nothing_recorded(sent, [TRANSMITTED, TRANSMITTED])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"MZ\x90\x00 this is a program", services.NOT_A_LETTER),
        (b"<html><script>alert(1)</script></html>", services.NOT_A_LETTER),
        (b"\xff\xd8\xff\xe0 a truncated jpeg", services.NOT_A_LETTER),
        (jpeg_with_gps()[:3000], services.NOT_A_LETTER),  # a header, then nothing: the worker says
        (b"%PDF-1.7\n" + b"0" * services.LETTER_MAX_BYTES, services.LETTER_TOO_LARGE),
    ],
)
async def test_a_letter_that_is_not_a_pdf_or_photo_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, content: bytes, message: str
) -> None:
    sent = await sent_world()
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await client.post(
        sent.answer_url,
        data={
            **answer(sent, **{f"proposal-{sent.proposals[0]}": ANSWERED}),
            "_csrf_token": await csrf_token(client),
        },
        files={"letter": ("lettre.pdf", content, "application/pdf")},
    )
    assert response.status_code == 400, response.text[-2000:]
    assert t(message, max=services.LETTER_MAX_BYTES // 2**20) in response.text
    await nothing_recorded(sent, [TRANSMITTED, TRANSMITTED])


async def test_the_letter_is_kept_clean_and_served_only_to_those_who_manage_the_table(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    world = sent.world
    await sign_in(client, world.users["facilitator_a"])
    token = await csrf_token(client)
    for name, content, kind in (
        ("lettre.jpg", jpeg_with_gps(), "image/jpeg"),
        ("lettre.pdf", MINIMAL_PDF, "application/pdf"),
    ):
        response = await client.post(
            sent.answer_url,
            data={**answer(sent, summary=f"Réponse {name}"), "_csrf_token": token},
            files={"letter": (name, content, kind)},
        )
        assert response.status_code == 303, response.text[-2000:]
    photo_row, pdf_row = await Response.select().order_by(Response.id)
    assert photo_row["letter_type"] == "image/jpeg"
    photo = Image.open(io.BytesIO(bytes(photo_row["letter"])))
    assert dict(photo.getexif()) == {}  # no GPS, no phone's name
    assert not {"exif", "comment"} & set(photo.info)
    assert pdf_row["letter_type"] == "application/pdf"
    assert bytes(pdf_row["letter"]) == MINIMAL_PDF  # as the institution sent it

    url = f"/tables/flamants-iris/follow-up/answers/{pdf_row['id']}/letter"
    served = await client.get(url)
    assert served.status_code == 200
    assert served.content == MINIMAL_PDF
    assert served.headers["content-type"] == "application/pdf"
    assert served.headers["content-disposition"].startswith("attachment")
    assert "no-store" in served.headers["cache-control"]
    page = await client.get("/tables/flamants-iris/follow-up")
    assert url in page.text  # the facilitators see the link

    expected = {
        "coordinator_a": 200,
        "admin": 200,
        "resident_a": 403,
        "facilitator_b": 403,
        "coordinator_b": 403,
        "outsider": 403,
    }
    for role, status in expected.items():
        await sign_in(client, world.users[role])
        assert (await client.get(url)).status_code == status, role
    # Another table's address does not lead to this letter, even for its own facilitator.
    await sign_in(client, world.users["facilitator_b"])
    elsewhere = f"/tables/les-aygalades/follow-up/answers/{pdf_row['id']}/letter"
    assert (await client.get(elsewhere)).status_code == 404
    client.cookies.clear()
    anonymous = await client.get(url)
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/login")
    # A facilitator whose session has not proved its second factor confirms it first.
    await sign_in(client, world.users["facilitator_a"], verified=False)
    assert (await client.get(url)).status_code in (302, 303)


async def test_the_same_answer_sent_at_once_is_recorded_once(app: object) -> None:
    """A double click, five times over, each from its own browser tab: one answer."""
    sent = await sent_world()
    from accounts.services import open_session

    session = await open_session(sent.world.users["facilitator_a"], verified=True)
    async with make_client(app) as browser:
        token = await csrf_token(browser)
    data = answer(
        sent,
        **{f"proposal-{sent.proposals[0]}": ANSWERED, f"proposal-{sent.proposals[1]}": "mentioned"},
    )

    async def submit() -> httpx.Response:
        async with make_client(app) as tab:
            tab.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await tab.post(sent.answer_url, data={**data, "_csrf_token": token})

    responses = await asyncio.gather(*(submit() for _ in range(5)))
    assert [r.status_code for r in responses] == [303] * 5, [r.text[-500:] for r in responses]
    assert await Response.count() == 1
    assert await ResponseItem.count() == 2
    assert await StatusChange.count() == 1
    assert await statuses(sent.proposals) == [ANSWERED, TRANSMITTED]
    assert await AuditEntry.count().where(AuditEntry.action == "response.recorded") == 1


async def test_a_status_changed_meanwhile_refuses_the_whole_answer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proposal moved between reading and writing: nothing of the answer stays."""
    sent = await sent_world()
    first = sent.proposals[0]
    original = services.record_change

    async def moved_meanwhile(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        await Proposal.update({Proposal.status: REFUSED}).where(Proposal.id == sent.proposals[1])

    monkeypatch.setattr(services, "record_change", moved_meanwhile)
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await post_form(
        client,
        sent.answer_url,
        answer(sent, **{f"proposal-{first}": ANSWERED, f"proposal-{sent.proposals[1]}": ANSWERED}),
    )
    assert response.status_code == 409
    assert t(STATUS_CHANGED) in response.text
    await nothing_recorded(sent, [TRANSMITTED, TRANSMITTED])


# Who may do what


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (None, 303),
        ("resident_a", 403),
        ("facilitator_b", 403),
        ("coordinator_b", 403),
        ("outsider", 403),
        ("facilitator_a", 200),
        ("coordinator_a", 200),
        ("admin", 200),
    ],
)
async def test_who_may_open_the_answer_form_and_record_one(
    client: httpx.AsyncClient, role: str | None, status: int
) -> None:
    sent = await sent_world()
    if role:
        await sign_in(client, sent.world.users[role])
    form = await client.get(sent.answer_url)
    assert form.status_code == status
    if status == 303:
        assert form.headers["location"].startswith("/login")
    posted = await post_form(client, sent.answer_url, answer(sent))
    assert posted.status_code == {303: 401, 403: 403, 200: 303}[status]
    assert await Response.count() == (1 if status == 200 else 0)
    assert (await client.get("/tables/flamants-iris/follow-up")).status_code == 200


async def test_another_tables_brief_is_not_reached_through_this_table(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    await sign_in(client, sent.world.users["facilitator_b"])
    url = f"/tables/les-aygalades/follow-up/briefs/{sent.brief['slug']}/answer"
    assert (await client.get(url)).status_code == 404
    assert (await post_form(client, url, answer(sent))).status_code == 404
    assert await Response.count() == 0


async def test_a_brief_never_sent_has_no_answer(client: httpx.AsyncClient) -> None:
    world = await build_world()
    await Brief.insert(
        Brief(slug="brouillon", table=world.table_a["id"], title="Brouillon", addressed_to="-")
    )
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        "/tables/flamants-iris/follow-up/briefs/brouillon/answer",
        {"summary": "Rien", "received_on": "2026-01-01", "institution": "1"},
    )
    assert response.status_code == 409
    assert t(services.NOT_SENT) in response.text


async def test_an_answer_to_look_at_again_is_recalled_to_the_facilitators(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    today = datetime.now(LOCAL_TIMEZONE).date()
    await sign_in(client, sent.world.users["facilitator_a"])
    for summary, look_again in (("Promis pour hier.", -1), ("Promis pour demain.", 1)):
        response = await post_form(
            client,
            sent.answer_url,
            answer(
                sent,
                summary=summary,
                received_on=(today - timedelta(days=2)).isoformat(),
                look_again_on=(today + timedelta(days=look_again)).isoformat(),
            ),
        )
        assert response.status_code == 303, response.text[-2000:]
    due = await services.to_look_again(sent.world.table_a["id"])
    assert [row["look_again_on"] for row in due] == [today - timedelta(days=1)]
    page = await client.get("/tables/flamants-iris/follow-up")
    assert t("To look at again") in page.text
    client.cookies.clear()
    assert t("To look at again") not in (await client.get("/tables/flamants-iris/follow-up")).text


# Overdue


async def test_overdue_starts_the_day_after_the_delay_ends(client: httpx.AsyncClient) -> None:
    # Sent on 31 January (Marseille time) with a month to answer: due on 28 February.
    sent_at = datetime(2026, 1, 31, 23, 30, tzinfo=LOCAL_TIMEZONE)
    sent = await sent_world(sent_at=sent_at)
    table = sent.world.table_a["id"]
    await Table.update({Table.answer_delay_months: 1}).where(Table.id == table)
    assert await services.overdue([table], day=date(2026, 2, 28)) == []
    late = await services.overdue([table], day=date(2026, 3, 1))
    assert {row["institution_name"] for row in late} == {"Métropole Aix-Marseille", "Logirem"}
    assert {(row["due_on"], row["days_late"]) for row in late} == {(date(2026, 2, 28), 1)}
    # Two months: due on 31 March.
    await Table.update({Table.answer_delay_months: 2}).where(Table.id == table)
    assert await services.overdue([table], day=date(2026, 3, 31)) == []
    assert len(await services.overdue([table], day=date(2026, 4, 1))) == 2
    # An answer from one institution takes it off the list; the other is still late.
    await Response.insert(
        Response(
            brief=sent.brief["id"],
            institution=sent.institutions[1],
            received_on=date(2026, 4, 2),
            summary="Nous reviendrons vers vous.",
        )
    )
    late = await services.overdue([table], day=date(2026, 4, 3))
    assert [row["institution_name"] for row in late] == ["Métropole Aix-Marseille"]
    assert services.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert services.add_months(date(2026, 11, 30), 2) == date(2027, 1, 30)


async def test_overdue_institutions_show_on_the_table_and_the_facilitators_home(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world(sent_at=datetime.now(UTC) - timedelta(days=100))
    table_page = await client.get("/tables/flamants-iris")
    assert t("Answers overdue") in table_page.text
    assert "Logirem" in table_page.text
    assert "/tables/flamants-iris/follow-up" in table_page.text
    home_title = t("Answers overdue at your tables")
    assert home_title not in (await client.get("/")).text  # anonymous
    await sign_in(client, sent.world.users["resident_a"])
    assert home_title not in (await client.get("/")).text
    await sign_in(client, sent.world.users["facilitator_b"])
    assert home_title not in (await client.get("/")).text  # not their table
    for role in ("facilitator_a", "coordinator_a"):
        await sign_in(client, sent.world.users[role])
        home = await client.get("/")
        assert home_title in home.text
        assert "Métropole Aix-Marseille" in home.text
    follow_up = await client.get("/tables/flamants-iris/follow-up")
    reminder = (
        f"/tables/flamants-iris/follow-up/briefs/nos-priorites/reminders/{sent.institutions[0]}"
    )
    assert reminder in follow_up.text


async def test_the_facilitators_set_the_delay_between_one_and_24_months(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world()
    url = "/tables/flamants-iris/follow-up/delay"
    await sign_in(client, world.users["facilitator_a"])
    assert (await post_form(client, url, {"answer_delay_months": "6"})).status_code == 303
    for wrong in ("0", "25", "deux", ""):
        refused = await post_form(client, url, {"answer_delay_months": wrong})
        assert refused.status_code == 400, wrong
        message = t(REQUIRED) if not wrong else t(NUMBER_RANGE, min=1, max=24)
        assert message in refused.text
    assert await services.answer_delay(world.table_a["id"]) == 6
    assert await AuditEntry.count().where(AuditEntry.action == "table.answer_delay") == 1
    for role, status in (("resident_a", 403), ("facilitator_b", 403)):
        await sign_in(client, world.users[role])
        assert (await post_form(client, url, {"answer_delay_months": "1"})).status_code == status
    client.cookies.clear()
    assert (await post_form(client, url, {"answer_delay_months": "1"})).status_code == 401
    assert await services.answer_delay(world.table_a["id"]) == 6


# The public follow-up


async def test_the_follow_up_page_filters_by_institution_theme_and_status(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    organisation = sent.world.table_a["organisation"]
    prefecture = await add_institution(organisation, "Préfecture des Bouches-du-Rhône")
    third = await add_proposal(
        sent.world.table_a, "Des bancs place de la Bricarde", status=ANSWERED, theme="public_space"
    )
    await send_brief(sent.world.table_a, [third], [prefecture], slug="bancs", title="Des bancs")
    base = "/tables/flamants-iris/follow-up"
    everything = await client.get(base)
    assert everything.status_code == 200
    assert all(title.replace("'", "&#39;") in everything.text for title in TITLES)
    assert "Des bancs place de la Bricarde" in everything.text
    counts = await services.counts([sent.world.table_a["id"]])
    assert counts == {"sent": 3, TRANSMITTED: 2, ANSWERED: 1, DONE: 0, REFUSED: 0}

    def shown(page: httpx.Response) -> set[str]:
        titles = {"ascenseurs": TITLES[0], "abri": "Un abri pour l&#39;arrêt", "bancs": "Des bancs"}
        return {key for key, text in titles.items() if text in page.text}

    assert shown(await client.get(f"{base}?theme=transport")) == {"abri"}
    assert shown(await client.get(f"{base}?status=answered")) == {"bancs"}
    assert shown(await client.get(f"{base}?institution={prefecture}")) == {"bancs"}
    assert shown(await client.get(f"{base}?institution={sent.institutions[1]}")) == {
        "ascenseurs",
        "abri",
    }
    # Odd values are no filter at all, not an error.
    assert shown(await client.get(f"{base}?status=nope&theme=%00&institution=99999999999")) == {
        "ascenseurs",
        "abri",
        "bancs",
    }
    fragment = await client.get(
        f"{base}?theme=transport", headers={"hx-request": "true", "hx-target": "followup-rows"}
    )
    assert "<html" not in fragment.text
    assert shown(fragment) == {"abri"}
    # Waiting since it was sent, three days ago.
    waiting = nt("waiting for %(num)d day", "waiting for %(num)d days", 3)
    assert waiting in (await client.get(f"{base}?theme=transport")).text
    organisation_page = await client.get("/organisations/avec-nous/follow-up")
    assert organisation_page.status_code == 200
    assert shown(organisation_page) == {"ascenseurs", "abri", "bancs"}
    assert (await client.get("/organisations/nowhere/follow-up")).status_code == 404
    assert (await client.get("/tables/nowhere/follow-up")).status_code == 404
    arabic = await client.get(f"{base}?lang=ar")
    assert '<html lang="ar" dir="rtl">' in arabic.text


async def test_the_follow_up_pages_run_a_fixed_number_of_queries_and_paginate(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world(sent_at=datetime.now(UTC) - timedelta(days=120))
    await sign_in(client, sent.world.users["facilitator_a"])
    urls = [
        "/tables/flamants-iris/follow-up",
        "/tables/flamants-iris/follow-up?theme=housing&institution=1",
        "/organisations/avec-nous/follow-up",
        "/api/v1/tables/flamants-iris/follow-up",
    ]

    async def grow(n: int, start: int) -> None:
        for i in range(start, start + n):
            proposal = await add_proposal(sent.world.table_a, f"Proposition {i}", status=ANSWERED)
            brief = await send_brief(
                sent.world.table_a, [proposal], sent.institutions, slug=f"b{i}", title=f"B{i}"
            )
            await Response.insert(
                Response(
                    brief=brief["id"],
                    institution=sent.institutions[0],
                    received_on=date(2026, 1, 1),
                    summary=f"Réponse {i}",
                )
            )

    async def queries(url: str) -> int:
        before = db.engine().queries_run
        assert (await client.get(url)).status_code == 200
        return db.engine().queries_run - before

    await grow(2, 0)
    small = {url: await queries(url) for url in urls}
    await grow(60, 2)
    large = {url: await queries(url) for url in urls}
    assert large == small
    first = await client.get(urls[0])
    assert first.text.count('class="card followup-card"') == services.PAGE_SIZE
    assert t("Page %(page)d of %(pages)d", page=1, pages=2) in first.text
    second = await client.get(f"{urls[0]}?page=2")
    assert second.text.count('class="card followup-card"') == 64 - services.PAGE_SIZE


# Paper


async def test_the_wall_poster_is_one_a3_page_anyone_can_download(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    for i in range(services.POSTER_ROWS + 3):
        proposal = await add_proposal(
            sent.world.table_a, f"Proposition numéro {i} " + "très longue " * 9, status=TRANSMITTED
        )
        await send_brief(
            sent.world.table_a, [proposal], sent.institutions, slug=f"long-{i}", title=f"L{i}"
        )
    response = await client.get("/tables/flamants-iris/follow-up.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (
        297,
        420,
    )
    text = " ".join(pdf_text(response.content).split())
    assert t("What became of our proposals") in text
    assert "Flamants Iris" in text
    assert "Proposition numéro 12" in text  # the newest first
    # 15 sent: those the sheet holds are listed, the others counted.
    more = re.search(
        re.escape(nt("and %(num)d more", "and %(num)d more", 2)).replace("2", r"(\d+)"), text
    )
    assert more is not None
    listed = len(set(re.findall(r"Proposition numéro (\d+)", text)))
    assert listed >= 3
    assert listed + int(more.group(1)) == 15
    assert await StoredPdf.count() == 1
    again = await client.get("/tables/flamants-iris/follow-up.pdf")
    assert again.content == response.content
    assert await StoredPdf.count() == 1
    english = await client.get("/tables/flamants-iris/follow-up.pdf?lang=en")
    assert "What became of our proposals" in pdf_text(english.content)


async def test_the_reminder_letter_recalls_the_brief_to_the_institution_late_with_it(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world(sent_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    url = f"/tables/flamants-iris/follow-up/briefs/nos-priorites/reminders/{sent.institutions[0]}"
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await client.get(url)
    assert response.status_code == 200, response.text[-2000:]
    assert response.headers["content-type"] == "application/pdf"
    text = " ".join(pdf_text(response.content).split())
    for expected in (
        "Métropole Aix-Marseille",
        "Direction des transports",
        "Nos priorités pour les Flamants",
        "2 mars 2026",
        "http://testserver.local/briefs/nos-priorites",
        TITLES[0],
        "Un abri pour l",
        "Avec Nous",
    ):
        assert expected in text, expected
    for role, status in (("facilitator_b", 403), ("resident_a", 403), ("coordinator_a", 200)):
        await sign_in(client, sent.world.users[role])
        assert (await client.get(url)).status_code == status, role
    client.cookies.clear()
    assert (await client.get(url)).status_code in (302, 303)
    # Once the institution has answered, there is nothing to remind it of.
    await Response.insert(
        Response(
            brief=sent.brief["id"],
            institution=sent.institutions[0],
            received_on=date(2026, 5, 1),
            summary="Nous étudions.",
        )
    )
    await sign_in(client, sent.world.users["facilitator_a"])
    answered = await client.get(url)
    assert answered.status_code == 409
    assert t(services.ALREADY_ANSWERED) in answered.text
    stranger = await add_institution(sent.world.table_a["organisation"], "Inconnue")
    assert (await client.get(url.rsplit("/", 1)[0] + f"/{stranger}")).status_code == 404


# Open data


async def test_the_follow_up_is_open_data_without_anything_personal(
    client: httpx.AsyncClient,
) -> None:
    sent = await sent_world()
    await sign_in(client, sent.world.users["facilitator_a"])
    response = await client.post(
        sent.answer_url,
        data={
            **answer(sent, **{f"proposal-{sent.proposals[1]}": ANSWERED}),
            "_csrf_token": await csrf_token(client),
        },
        files={"letter": ("lettre.pdf", MINIMAL_PDF, "application/pdf")},
    )
    assert response.status_code == 303
    client.cookies.clear()
    api = await client.get("/api/v1/tables/flamants-iris/follow-up")
    assert api.status_code == 200
    body = api.json()
    assert body["counts"] == {"sent": 2, "transmitted": 1, "answered": 1, "done": 0, "refused": 0}
    assert (body["page"], body["pages"], body["total"]) == (1, 1, 2)
    by_title = {item["title"]: item for item in body["items"]}
    answered = by_title[TITLES[1]]
    assert answered["status"] == ANSWERED
    assert answered["brief_url"] == "http://testserver.local/briefs/nos-priorites"
    assert answered["days_waiting"] is None
    assert by_title[TITLES[0]]["days_waiting"] == 3
    metropole = next(
        a for a in answered["addressees"] if a["institution_id"] == sent.institutions[0]
    )
    assert metropole["answers"][0]["summary"].startswith("La Métropole étudie")
    assert metropole["answers"][0]["moved_to"] == ANSWERED
    text = api.text
    for personal in ("recorded_by", "letter", "Facilitator", "facilitator-a"):
        assert personal not in text, personal
    filtered = await client.get("/api/v1/tables/flamants-iris/follow-up?status=answered")
    assert [item["title"] for item in filtered.json()["items"]] == [TITLES[1]]
    assert (await client.get("/api/v1/tables/flamants-iris/follow-up?page=0")).status_code == 400
    assert (await client.get("/api/v1/tables/nowhere/follow-up")).status_code == 404
    organisation = await client.get("/api/v1/organisations/avec-nous/follow-up")
    assert organisation.json()["total"] == 2
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/tables/{slug}/follow-up" in schema["paths"]
    assert "/api/v1/organisations/{slug}/follow-up" in schema["paths"]
