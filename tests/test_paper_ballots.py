"""Paper ballots of an open vote: a real PDF, the right number of sheets, in the asked language."""

from __future__ import annotations

import io
import subprocess
from typing import Any

import pytest
from httpx import AsyncClient
from pypdf import PdfReader

from exports import pdf
from tests.factories import add_proposal, build_world, sign_in, t
from tests.test_votes import close_by_hand, open_vote_on, open_vote_over
from votes.scales import SCALES

TITLES = ["Réparer les ascenseurs de la tour G", "حاويات نفايات إضافية قرب السوق"]
GRADES = ("Very good", "Good", "Passable", "Insufficient", "To reject")  # the five-grade scale


def pdftotext(content: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-q", "-", "-"], input=content, capture_output=True, check=True
    )
    return done.stdout.decode()


def pages(content: bytes) -> int:
    return len(PdfReader(io.BytesIO(content)).pages)


async def majority_vote(client: AsyncClient) -> tuple[Any, int]:
    world = await build_world()
    ids = [await add_proposal(world.table_a, title) for title in TITLES]
    vote_id = await open_vote_over(client, world, ids, scale="five")
    return world, vote_id


@pytest.mark.parametrize(
    ("query", "expected_pages"),
    [("", 1), ("?copies=2&format=a5", 1), ("?copies=3&format=a5", 2), ("?copies=5&format=a6", 2)],
)
async def test_ballots_fill_a4_sheets(client: AsyncClient, query: str, expected_pages: int) -> None:
    _, vote_id = await majority_vote(client)
    response = await client.get(f"/votes/{vote_id}/paper.pdf{query}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert pages(response.content) == expected_pages


async def test_french_ballot_has_question_options_and_grades(client: AsyncClient) -> None:
    _, vote_id = await majority_vote(client)
    response = await client.get(f"/votes/{vote_id}/paper.pdf?copies=4&format=a6&lang=fr")
    text = pdftotext(response.content)
    assert "Que porter en premier ?" in text
    assert TITLES[0] in text
    for grade in GRADES:
        assert t(grade, "fr") in text
    assert text.count("Que porter en premier ?") == 4
    assert t("Vote no. %(number)d", "fr", number=vote_id) in text
    assert SCALES["five"][-1] in text  # the blank-counts-as rule names the lowest grade


async def test_arabic_ballot_is_right_to_left_and_translated(client: AsyncClient) -> None:
    _, vote_id = await majority_vote(client)
    response = await client.get(f"/votes/{vote_id}/paper.pdf?format=a5&lang=ar")
    assert response.status_code == 200
    text = pdftotext(response.content)
    assert t("Passable", "ar") in text
    assert t("Paper ballot", "ar") in text
    html = pdf._html(
        "exports/pdf/paper_ballot.html",
        "ar",
        vote={"id": 1, "method": "approval", "question": "?", "grades": (), "options": []},
        options=[],
        table={"name": "Flamants"},
        layout="a5",
        sheets=[range(1)],
        pictograms={},
    )
    assert '<html lang="ar" dir="rtl">' in html


async def test_yes_no_and_approval_ballots(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, TITLES[0])
    vote_id = await open_vote_on(client, world, proposal)
    text = pdftotext((await client.get(f"/votes/{vote_id}/paper.pdf?lang=en")).content)
    for word in ("For", "Against", "Abstain", "Tick one box.", TITLES[0]):
        assert word in text
    other = await add_proposal(world.table_a, "Un banc sur la place")
    third = await add_proposal(world.table_a, "Plus de poubelles")
    approval = await open_vote_over(client, world, [other, third], method="approval")
    text = pdftotext((await client.get(f"/votes/{approval}/paper.pdf?lang=en")).content)
    assert "Tick every proposal you approve" in text
    assert "Un banc sur la place" in text


def test_a_long_vote_gets_a_page_per_ballot() -> None:
    options = [
        {"label": f"Proposition {n}", "theme": "housing", "withdrawn": False} for n in range(12)
    ]
    vote = {
        "id": 3,
        "method": "majority_judgment",
        "question": "Beaucoup ?",
        "grades": SCALES["seven"],
        "options": options,
    }
    assert pdf.paper_layout(vote, "a6") == "a4"
    content = pdf.render_paper_ballots(vote, {"name": "T"}, copies=2, size="a6", lang="fr")
    text = pdftotext(content)
    assert "Proposition 11" in text  # nothing cut off
    assert pages(content) >= 2


@pytest.mark.parametrize("role", ["resident_a", "facilitator_b", "coordinator_b", "outsider"])
async def test_others_are_refused(client: AsyncClient, role: str) -> None:
    world, vote_id = await majority_vote(client)
    await sign_in(client, world.users[role])
    response = await client.get(f"/votes/{vote_id}/paper.pdf")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "query", ["copies=0", "copies=301", "copies=abc", "copies=-1", "format=a3", "lang=de"]
)
async def test_bad_values_are_refused_in_words(client: AsyncClient, query: str) -> None:
    _, vote_id = await majority_vote(client)
    response = await client.get(f"/votes/{vote_id}/paper.pdf?{query}")
    assert response.status_code == 400
    assert "text/html" in response.headers["content-type"]


async def test_copies_up_to_300(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, TITLES[0])
    vote_id = await open_vote_on(client, world, proposal)
    response = await client.get(f"/votes/{vote_id}/paper.pdf?copies=300&format=a6")
    assert response.status_code == 200
    assert pages(response.content) == 75


async def test_closed_vote_prints_no_ballots(client: AsyncClient) -> None:
    world, vote_id = await majority_vote(client)
    await close_by_hand(client, world, vote_id)
    response = await client.get(f"/votes/{vote_id}/paper.pdf")
    assert response.status_code == 409
    assert t("This vote is closed; ballots are no longer accepted.", "fr") in response.text


async def test_the_vote_page_offers_the_form_to_managers_only(client: AsyncClient) -> None:
    world, vote_id = await majority_vote(client)
    page = await client.get(f"/votes/{vote_id}")
    assert f'action="/votes/{vote_id}/paper.pdf"' in page.text
    await sign_in(client, world.users["resident_a"])
    page = await client.get(f"/votes/{vote_id}")
    assert "paper.pdf" not in page.text
