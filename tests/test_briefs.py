"""Position documents: publishing, reading, and real PDFs in French, Arabic and English."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re

import pytest
from httpx import AsyncClient
from pypdf import PdfReader

from exports import services, stored
from exports.models import Brief, BriefItem, StoredPdf
from proposals.models import ADOPTED, Proposal
from tests.factories import (
    FLAMANTS_SQUARE,
    add_proposal,
    build_world,
    draw_district,
    post_form,
    run_voix,
    sign_in,
    sign_out,
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
        # Encoded, the dots and slashes used to pass the check and be decoded by urllib after.
        f"file://{PROJECT_ROOT}/exports/assets/%2e%2e/%2e%2e/pyproject.toml",
        f"file://{PROJECT_ROOT}/exports/assets/%2E%2E/%2E%2E/pyproject.toml",
        f"file://{PROJECT_ROOT}/exports/assets/%252e%252e/%252e%252e/pyproject.toml",
        f"file://{PROJECT_ROOT}/exports/assets/..%2f..%2fpyproject.toml",
        f"file://{PROJECT_ROOT}/exports/assets/fonts%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
        f"file://{PROJECT_ROOT}/exports/assets/%25252e%25252e%25252f%25252e%25252e%25252fx",
        f"file:{PROJECT_ROOT}/exports/assets/%2e%2e/%2e%2e/pyproject.toml",
        "file://example.org/etc/passwd",
        "FILE:///etc/passwd",  # the scheme is read case-insensitively by WeasyPrint
        " file:///etc/passwd",
    ):
        with pytest.raises(ValueError, match=r"Refused|disallowed"):
            fetcher.fetch(url)
    fetcher.fetch(f"file://{PROJECT_ROOT}/exports/assets/fonts/NotoSans-Regular.ttf").close()
    fetcher.fetch(f"file://{PROJECT_ROOT}/exports/assets/fonts/NotoSans%2DRegular.ttf").close()
    fetcher.fetch(
        f"file://{PROJECT_ROOT}/exports/assets/fonts/../fonts/NotoSans-Regular.ttf"
    ).close()


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


async def test_bidi_overrides_reach_neither_the_pages_nor_the_pdf(client: AsyncClient) -> None:
    """ "Admin\u202etxt.exe" would print as "Adminexe.txt"; it comes back as typed, minus it."""
    world = await build_world()
    signup = {
        "display_name": "Admin\u202etxt.exe",
        "login": "samira13",
        "password": "un mot de passe",
        "table": "flamants-iris",
        "language": "fr",
    }
    assert (await post_form(client, "/signup", signup)).status_code == 303  # signed in
    created = await post_form(
        client,
        "/tables/flamants-iris/proposals",
        {
            "title": "Des bancs\u202e gpj.exe",
            "body": "Les parents\u2066 attendent\u2069 debout.\nالأهالي ينتظرون وقوفًا\u200f.",
            "theme": "school",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    row = await Proposal.select(Proposal.id, Proposal.title, Proposal.body).first()
    assert row["title"] == "Des bancs gpj.exe"
    assert row["body"] == "Les parents attendent debout.\nالأهالي ينتظرون وقوفًا\u200f."
    page = await client.get(created.headers["location"])
    assert "Des bancs gpj.exe" in page.text
    shown = re.sub(r"<[^>]+>", "", page.text)  # the author's name sits in a <bdi> isolate
    assert t("Proposed by %(author)s", author="Admintxt.exe") in shown
    for char in ("\u202e", "\u2066", "\u2069"):
        assert char not in page.text

    await Proposal.update({Proposal.status: ADOPTED}).where(Proposal.id == row["id"])
    await sign_in(client, world.users["facilitator_a"])
    published = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    brief = await client.get(published.headers["location"])
    assert "Des bancs gpj.exe" in brief.text
    assert "\u202e" not in brief.text
    text = pdf_text((await client.get(f"{published.headers['location']}/pdf/fr")).content)
    assert "Des bancs gpj.exe" in text
    assert "\u202e" not in text


async def test_hidden_proposals_are_never_sent_in_a_brief(client: AsyncClient) -> None:
    world = await adopted_world()
    hidden = await add_proposal(world.table_a, "Un texte injurieux adopté", status=ADOPTED)
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/proposals/{hidden}/moderation", {"reason": "Propos injurieux"})
    form = await client.get("/tables/flamants-iris/briefs/new")
    assert "tour G" in form.text
    assert "injurieux" not in form.text
    published = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    assert published.status_code == 303
    assert await BriefItem.count() == 2
    assert not await BriefItem.exists().where(BriefItem.proposal == hidden)

    before = pdf_text((await client.get(f"{published.headers['location']}/pdf/fr")).content)
    assert "tour G" in before
    assert "injurieux" not in before

    # Hidden after the brief was published: it leaves the page and the PDF (not served stale).
    tour_g = await Proposal.select(Proposal.id).where(Proposal.title.like("%tour G")).first()
    await post_form(client, f"/proposals/{tour_g['id']}/moderation", {"reason": "Doublon"})
    sign_out(client)
    page = await client.get(published.headers["location"])
    assert page.status_code == 200
    assert "tour G" not in page.text
    assert "حاويات نفايات" in page.text
    text = pdf_text((await client.get(f"{published.headers['location']}/pdf/fr")).content)
    assert "tour G" not in text
    assert "injurieux" not in text


async def test_only_hidden_adoptions_mean_nothing_to_send(client: AsyncClient) -> None:
    world = await build_world()
    hidden = await add_proposal(world.table_a, "Un texte injurieux adopté", status=ADOPTED)
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/proposals/{hidden}/moderation", {"reason": "Propos injurieux"})
    response = await post_form(client, "/tables/flamants-iris/briefs", BRIEF)
    assert response.status_code == 409
    assert t(services.NOTHING_ADOPTED) in response.text
    assert await Brief.count() == 0


# Published PDFs are rendered once, in the worker pool, then served as stored


async def published_brief(client: AsyncClient) -> str:
    world = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    published = await post_form(
        client, "/tables/flamants-iris/briefs", BRIEF, follow_redirects=False
    )
    sign_out(client)
    return str(published.headers["location"])


async def test_a_published_brief_pdf_is_rendered_in_the_pool_once_then_served_as_stored(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_event_loop import pool_taken

    location = await published_brief(client)
    async with pool_taken(monkeypatch):  # rendering goes through the bounded pool
        refused = await client.get(f"{location}/pdf/ar")
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert await StoredPdf.count() == 0

    first = await client.get(f"{location}/pdf/ar")
    assert first.status_code == 200
    row = await StoredPdf.select().first()
    assert (row["document"], row["language"]) == (f"brief:{location.rsplit('/', 1)[1]}", "ar")
    assert bytes(row["content"]) == first.content
    assert row["sha256"] == hashlib.sha256(first.content).hexdigest()

    async with pool_taken(monkeypatch):  # a rendering now would be refused: none happens
        second = await client.get(f"{location}/pdf/ar")
    assert second.status_code == 200
    assert second.content == first.content
    assert await StoredPdf.count() == 1
    assert (await client.get(f"{location}/pdf/fr")).status_code == 200  # one per language
    assert await StoredPdf.count() == 2


async def test_two_processes_storing_the_same_pdf_at_once_keep_one_copy(
    client: AsyncClient,
) -> None:
    location = await published_brief(client)
    document = await services.load(location.rsplit("/", 1)[1])
    key = stored.fingerprint(stored.render_brief, document, "en")
    # As two app processes would (each renders: the shared rendering is per process).
    copies = await asyncio.gather(
        *[
            stored._render_and_store(
                f"brief:{document.slug}",
                "en",
                key,
                render=stored.render_brief,
                args=(document, "en"),
                kwargs={},
            )
            for _ in range(2)
        ]
    )
    assert await StoredPdf.count() == 1
    row = await StoredPdf.select(StoredPdf.content).first()
    assert copies[0] == copies[1] == bytes(row["content"])  # the loser serves the stored copy


async def test_a_brief_whose_content_changed_is_rendered_again_not_served_stale(
    client: AsyncClient,
) -> None:
    location = await published_brief(client)
    before = await client.get(f"{location}/pdf/en")
    assert "Réparer les ascenseurs de la tour G" in pdf_text(before.content)
    await Proposal.update({Proposal.title: "Réparer les ascenseurs des tours G et H"}).where(
        Proposal.title == "Réparer les ascenseurs de la tour G"
    )
    after = await client.get(f"{location}/pdf/en")
    assert "Réparer les ascenseurs des tours G et H" in pdf_text(after.content)
    rows = await StoredPdf.select(StoredPdf.content)
    assert [bytes(r["content"]) for r in rows] == [after.content]  # the old one is gone


async def test_cli_export_serves_the_stored_pdf(client: AsyncClient, tmp_path) -> None:
    stored._renderer_digest.cache_clear()  # templates and catalogs as they are now on disk
    location = await published_brief(client)
    assert (await client.get(f"{location}/pdf/ar")).status_code == 200
    # Marked, so that a rendering (which would not carry the mark) cannot pass for it.
    marked = b"%PDF-1.7\n% the stored copy\n"
    await StoredPdf.update(
        {StoredPdf.content: marked, StoredPdf.sha256: hashlib.sha256(marked).hexdigest()},
        force=True,
    )
    output = tmp_path / "brief.pdf"
    slug = location.rsplit("/", 1)[1]
    result = run_voix("export", "brief", slug, "--lang", "ar", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes() == marked
