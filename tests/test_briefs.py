"""Position documents: publishing, reading, and real PDFs in French, Arabic and English."""

from __future__ import annotations

import io

import pytest
from httpx import AsyncClient
from pypdf import PdfReader

from exports import services
from exports.models import Brief, BriefItem
from proposals.models import ADOPTED, Proposal
from tests.factories import (
    FLAMANTS_SQUARE,
    add_proposal,
    build_world,
    draw_district,
    post_form,
    run_voix,
    sign_in,
    t,
)
from voix.settings import PROJECT_ROOT

BRIEF = {
    "title": "Rénovation des Flamants : nos priorités",
    "addressed_to": "Conseil citoyen du 14e",
    "introduction": "La table a débattu puis voté ces propositions.",
}


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


async def adopted_world():
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G", status=ADOPTED)
    await add_proposal(
        world.table_a,
        "حاويات نفايات إضافية قرب السوق",
        language="ar",
        status=ADOPTED,
        body="الحاويات الموجودة تمتلئ بسرعة يوم السوق.",
    )
    await add_proposal(world.table_a, "Une idée encore en discussion")
    return world


async def test_facilitator_publishes_a_brief_of_adopted_proposals(client: AsyncClient) -> None:
    world = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    form = await client.get("/tables/flamants-iris/briefs/new")
    assert "tour G" in form.text
    assert "en discussion" not in form.text
    response = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/briefs/renovation-des-flamants-nos-priorites"
    assert await BriefItem.count() == 2
    page = await client.get(response.headers["location"])
    assert "tour G" in page.text
    assert "Conseil citoyen du 14e" in page.text
    again = await post_form(client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False)
    assert again.headers["location"] == response.headers["location"]  # a double click
    assert await Brief.count() == 1


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
async def test_brief_pdf_is_a_real_document_in_each_language(
    client: AsyncClient, lang: str
) -> None:
    world = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    published = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    response = await client.get(f"{published.headers['location']}/pdf/{lang}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert "Réparer les ascenseurs de la tour G" in text
    assert "Conseil citoyen du 14e" in text
    heading = t("Adopted proposals", lang)
    if (
        lang != "ar"
    ):  # extracted Arabic comes out in visual order; pdftotext checks it in the browser test
        assert heading in text


async def test_residents_and_other_tables_cannot_publish(client: AsyncClient) -> None:
    world = await adopted_world()
    for role in ("resident_a", "facilitator_b", "coordinator_b", "outsider"):
        await sign_in(client, world.users[role])
        response = await post_form(client, "/tables/flamants-iris/briefs", BRIEF)
        assert response.status_code == 403, role
    assert await Brief.count() == 0


async def test_coordinator_of_the_organisation_can_publish(client: AsyncClient) -> None:
    world = await adopted_world()
    await sign_in(client, world.users["coordinator_a"])
    response = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    assert response.status_code == 303


async def test_nothing_adopted_means_nothing_to_send(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Une idée encore en discussion")
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(client, "/tables/flamants-iris/briefs", BRIEF)
    assert response.status_code == 409
    assert t(services.NOTHING_ADOPTED) in response.text
    assert await Brief.count() == 0


async def test_brief_fields_are_validated(client: AsyncClient) -> None:
    world = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client, "/tables/flamants-iris/briefs", {**BRIEF, "addressed_to": ""}
    )
    assert response.status_code == 400
    assert await Brief.count() == 0


async def test_unknown_pdf_language_is_404(client: AsyncClient) -> None:
    world = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    published = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    assert (await client.get(f"{published.headers['location']}/pdf/de")).status_code == 404


def test_the_renderer_fetches_nothing_outside_its_assets() -> None:
    from exports.pdf import LocalAssetsOnly

    fetcher = LocalAssetsOnly()
    for url in (
        "http://127.0.0.1:9/x.png",
        "https://example.org/font.ttf",
        "file:///etc/passwd",
        f"file://{PROJECT_ROOT}/exports/assets/../../pyproject.toml",
    ):
        with pytest.raises(ValueError, match=r"Refused|disallowed"):
            fetcher.fetch(url)
    fetcher.fetch(f"file://{PROJECT_ROOT}/exports/assets/fonts/NotoSans-Regular.ttf").close()


async def test_cli_exports_the_demo_brief(tmp_path) -> None:
    from voix.demo import seed

    await seed()
    output = tmp_path / "brief.pdf"
    result = run_voix(
        "export", "brief", "flamants-renovation", "--lang", "ar", "--output", str(output)
    )
    assert result.returncode == 0, result.stderr
    assert "Réparer les ascenseurs de la tour G" in pdf_text(output.read_bytes())
    missing = run_voix("export", "brief", "nope", "--output", str(output))
    assert missing.returncode == 2
    assert "nope" in missing.stderr
    assert await Proposal.count() > 10


async def test_a_script_title_is_printed_as_text_and_placed_proposals_are_mapped(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await draw_district(world.table_a, FLAMANTS_SQUARE)
    await add_proposal(
        world.table_a,
        "<script>alert('pdf')</script> Un abri",
        status=ADOPTED,
        latitude=43.329,
        longitude=5.41,
    )
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    pdf = await client.get(f"{response.headers['location']}/pdf/fr")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "<script>alert('pdf')</script> Un abri" in text  # shown as what was typed
    assert t("On the map") in text  # the map section, with the district's name
    assert "Quartier flamants-iris" in text
    assert b"/JavaScript" not in pdf.content
    assert b"/JS " not in pdf.content
