"""Position documents: publishing frozen versions, reading them, their files in each language."""

from __future__ import annotations

import asyncio
import hashlib
import io

import pikepdf
import pytest
from httpx import AsyncClient
from litestar.exceptions import PermissionDeniedException
from pypdf import PdfReader

from exports import services, snapshot, stored
from exports.models import Brief, BriefItem, BriefSent, BriefVersion, SentProposal, StoredPdf
from proposals.models import ADOPTED, TRANSMITTED, Proposal, StatusChange
from tests.factories import (
    FLAMANTS_SQUARE,
    add_draft,
    add_proposal,
    build_world,
    draw_district,
    post_form,
    publish_brief,
    run_voix,
    sign_in,
    sign_out,
)
from voix.forms import UserError
from voix.permissions import Principal
from voix.settings import PROJECT_ROOT

TITLE = "Rénovation des Flamants : nos priorités"


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
        theme="cleanliness",
    )
    await add_proposal(world.table_a, "Une idée encore en discussion")
    return world


def facilitator(world) -> Principal:
    return Principal(
        user_id=world.users["facilitator_a"],
        table_roles={world.table_a["id"]: "facilitator"},
        verified=True,
    )


async def test_publishing_freezes_version_1_and_sends_the_adopted_proposals(
    client: AsyncClient,
) -> None:
    world = await adopted_world()
    slug = await publish_brief(world.table_a, world.users["facilitator_a"], title=TITLE)
    row = await BriefVersion.select().first()
    assert row["number"] == 1
    document = snapshot.loads(row["document"])
    assert document["format"] == "voix-brief/1"
    assert document["items"][0]["title"] == "Réparer les ascenseurs de la tour G"
    assert [theme["theme"] for theme in document["themes"]] == ["housing", "cleanliness"]
    assert document["addressees"][0]["name"] == "Conseil citoyen du 14e"
    # Sent: the proposals move on, with their history; the follow-up's clocks start.
    statuses = {r["status"] for r in await Proposal.select(Proposal.status).where(
        Proposal.title != "Une idée encore en discussion"
    )}  # fmt: skip
    assert statuses == {TRANSMITTED}
    assert await StatusChange.count().where(StatusChange.to_status == TRANSMITTED) == 2
    assert await BriefSent.count() == 1
    assert await SentProposal.count() == 2
    assert (await Brief.select(Brief.version).first())["version"] == 1

    page = await client.get(f"/briefs/{slug}")  # public, anonymous
    assert page.status_code == 200
    assert "tour G" in page.text
    assert "Conseil citoyen du 14e" in page.text
    assert (await client.get(f"/briefs/{slug}/v/1")).status_code == 200
    assert (await client.get(f"/briefs/{slug}/v/2")).status_code == 404


async def test_a_draft_has_no_public_page(client: AsyncClient) -> None:
    world = await adopted_world()
    draft = await add_draft(world.table_a, slug="en-cours")
    assert (await client.get("/briefs/en-cours")).status_code == 404
    assert (await client.get("/briefs/en-cours/v/1")).status_code == 404
    assert (await client.get("/briefs/en-cours/pdf/fr")).status_code == 404
    await sign_in(client, world.users["facilitator_b"])  # another table's facilitator
    assert (await client.get("/briefs/en-cours")).status_code == 404
    await sign_in(client, world.users["facilitator_a"])
    mine = await client.get("/briefs/en-cours", follow_redirects=False)
    assert mine.status_code in (302, 303)
    assert mine.headers["location"] == f"/briefs/{draft['slug']}/edit"


async def test_a_new_version_never_changes_an_old_one(client: AsyncClient) -> None:
    world = await adopted_world()
    slug = await publish_brief(world.table_a, world.users["facilitator_a"], title=TITLE)
    first = await client.get(f"/briefs/{slug}/v/1/fr.pdf")
    assert first.status_code == 200
    await Brief.update({Brief.title: "Nos priorités, complétées"}).where(Brief.slug == slug)
    await Proposal.update({Proposal.title: "Réparer les ascenseurs des tours G et H"}).where(
        Proposal.title == "Réparer les ascenseurs de la tour G"
    )
    brief = await services.get_brief(slug)
    assert await services.publish_version(facilitator(world), brief) == 2
    old = await client.get(f"/briefs/{slug}/v/1")
    assert TITLE.split(" :", maxsplit=1)[0] in old.text
    assert "de la tour G" in old.text
    assert (await client.get(f"/briefs/{slug}/v/1/fr.pdf")).content == first.content
    new = await client.get(f"/briefs/{slug}")  # the newest
    assert "Nos priorités, complétées" in new.text
    assert "des tours G et H" in new.text
    # Sent once: the clocks of the follow-up stay at the first version.
    assert await SentProposal.count() == 2
    assert {r["version"] for r in await BriefSent.select(BriefSent.version)} == {1}


async def test_publishing_twice_at_once_makes_one_version(client: AsyncClient) -> None:
    world = await adopted_world()
    brief = await add_draft(world.table_a)
    numbers = await asyncio.gather(
        *[services.publish_version(facilitator(world), brief) for _ in range(4)]
    )
    assert set(numbers) == {1}
    assert await BriefVersion.count() == 1
    assert await StatusChange.count().where(StatusChange.to_status == TRANSMITTED) == 2


async def test_nothing_to_send_and_nobody_to_send_it_to_are_refused(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Une idée encore en discussion")
    empty = await add_draft(world.table_a, slug="vide")
    with pytest.raises(UserError, match=services.NOTHING_TO_SEND):
        await services.publish_version(facilitator(world), empty)
    adopted = await add_proposal(world.table_a, "Adoptée", status=ADOPTED)
    nobody = await add_draft(world.table_a, slug="personne", addressees=(), proposals=[adopted])
    with pytest.raises(UserError, match=services.NO_ADDRESSEE):
        await services.publish_version(facilitator(world), nobody)
    assert await BriefVersion.count() == 0
    assert (await Proposal.select(Proposal.status).where(Proposal.id == adopted).first())[
        "status"
    ] == ADOPTED


async def test_only_the_table_s_managers_publish(client: AsyncClient) -> None:
    world = await adopted_world()
    brief = await add_draft(world.table_a)
    for role in ("resident_a", "facilitator_b", "coordinator_b", "outsider"):
        who = Principal(user_id=world.users[role], verified=True)
        with pytest.raises(PermissionDeniedException):
            await services.publish_version(who, brief)
    assert await BriefVersion.count() == 0


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
async def test_each_language_s_files_are_real_documents(client: AsyncClient, lang: str) -> None:
    world = await adopted_world()
    slug = await publish_brief(world.table_a, world.users["facilitator_a"], title=TITLE)
    response = await client.get(f"/briefs/{slug}/v/1/{lang}.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert "Réparer les ascenseurs de la tour G" in text
    assert "Conseil citoyen du 14e" in text
    archive = await client.get(f"/briefs/{slug}/v/1/{lang}-pdfa.pdf")
    assert archive.status_code == 200
    with pikepdf.open(io.BytesIO(archive.content)) as opened:  # identified as PDF/A in its XMP
        assert "pdfaid:part" in str(opened.open_metadata())
    assert archive.content != response.content
    docx = await client.get(f"/briefs/{slug}/v/1/{lang}.docx")
    assert docx.status_code == 200
    assert docx.content.startswith(b"PK")
    assert "attachment" in docx.headers["content-disposition"]
    # The page shows each file's SHA-256 once made.
    page = await client.get(f"/briefs/{slug}/v/1")
    assert hashlib.sha256(response.content).hexdigest() in page.text
    assert hashlib.sha256(docx.content).hexdigest() in page.text
    # The newest version's PDF keeps its old address.
    assert (await client.get(f"/briefs/{slug}/pdf/{lang}")).content == response.content


async def test_unknown_files_and_languages_are_404(client: AsyncClient) -> None:
    world = await adopted_world()
    slug = await publish_brief(world.table_a, world.users["facilitator_a"])
    for path in ("v/1/de.pdf", "v/1/fr.exe", "v/1/fr-pdfa.docx", "v/1/fr", "pdf/de", "v/9/fr.pdf"):
        assert (await client.get(f"/briefs/{slug}/{path}")).status_code == 404, path


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
    docx = tmp_path / "brief.docx"
    result = run_voix(
        "export", "brief", "flamants-renovation", "--format", "docx", "--output", str(docx)
    )
    assert result.returncode == 0, result.stderr
    assert docx.read_bytes().startswith(b"PK")
    missing = run_voix("export", "brief", "nope", "--output", str(output))
    assert missing.returncode == 2
    assert "nope" in missing.stderr


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
    slug = await publish_brief(world.table_a, world.users["facilitator_a"])
    pdf = await client.get(f"/briefs/{slug}/v/1/fr.pdf")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "<script>alert('pdf')</script> Un abri" in text  # shown as what was typed
    assert "Quartier flamants-iris" in text  # the map, with the district's name
    assert b"/JavaScript" not in pdf.content
    assert b"/JS " not in pdf.content
    page = await client.get(f"/briefs/{slug}")
    assert "<script>alert('pdf')</script>" not in page.text


async def test_a_proposal_hidden_after_publication_is_withheld_from_the_version(
    client: AsyncClient,
) -> None:
    world = await adopted_world()
    hidden = await add_proposal(world.table_a, "Un texte injurieux adopté", status=ADOPTED)
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/proposals/{hidden}/moderation", {"reason": "Propos injurieux"})
    slug = await publish_brief(world.table_a, world.users["facilitator_a"])
    assert not await BriefItem.exists().where(BriefItem.proposal == hidden)
    before = pdf_text((await client.get(f"/briefs/{slug}/v/1/fr.pdf")).content)
    assert "tour G" in before
    assert "injurieux" not in before
    # Hidden after the version was published: it leaves the page and the files.
    tour_g = await Proposal.select(Proposal.id).where(Proposal.title.like("%tour G")).first()
    await post_form(client, f"/proposals/{tour_g['id']}/moderation", {"reason": "Doublon"})
    sign_out(client)
    page = await client.get(f"/briefs/{slug}")
    assert page.status_code == 200
    assert "tour G" not in page.text
    assert "حاويات نفايات" in page.text
    text = pdf_text((await client.get(f"/briefs/{slug}/v/1/fr.pdf")).content)
    assert "tour G" not in text
    assert "حاويات" in text or "cleanliness" not in text


async def published(client: AsyncClient) -> str:
    world = await adopted_world()
    return f"/briefs/{await publish_brief(world.table_a, world.users['facilitator_a'])}/v/1"


async def test_a_version_s_file_is_made_in_the_pool_once_then_served_as_stored(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_event_loop import pool_taken

    location = await published(client)
    async with pool_taken(monkeypatch):  # rendering goes through the bounded pool
        refused = await client.get(f"{location}/ar.pdf")
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert await StoredPdf.count() == 0

    first = await client.get(f"{location}/ar.pdf")
    assert first.status_code == 200
    row = await StoredPdf.select().first()
    assert (row["document"], row["language"]) == (f"{location.split('/')[2]}", "ar") or row[
        "document"
    ].endswith(":v1:pdf")
    assert bytes(row["content"]) == first.content
    assert row["sha256"] == hashlib.sha256(first.content).hexdigest()

    async with pool_taken(monkeypatch):  # a rendering now would be refused: none happens
        second = await client.get(f"{location}/ar.pdf")
    assert second.status_code == 200
    assert second.content == first.content
    assert await StoredPdf.count() == 1


async def test_a_version_s_file_survives_a_change_of_layout(client: AsyncClient) -> None:
    """Made once: new templates or catalogs do not make a published version's file anew."""
    location = await published(client)
    first = await client.get(f"{location}/en.pdf")
    stored._renderer_digest.cache_clear()
    stored._renderer_digest = lambda: "another layout"  # type: ignore[assignment]
    try:
        again = await client.get(f"{location}/en.pdf")
    finally:
        del stored._renderer_digest
        import importlib

        importlib.reload(stored)
    assert again.content == first.content
    assert await StoredPdf.count() == 1


async def test_two_processes_storing_the_same_file_at_once_keep_one_copy(
    client: AsyncClient,
) -> None:
    location = await published(client)
    slug = location.split("/")[2]
    _brief, row = await services.version(slug)
    document, _ = await services.read(row, "en")
    args = (document, "en", "pdf", {})
    key = stored.fingerprint(stored._render_version, *args, data_only=True)
    # As two app processes would (each renders: the shared rendering is per process).
    copies = await asyncio.gather(
        *[
            stored._render_and_store(
                stored.version_key(slug, 1, "pdf"),
                "en",
                key,
                render=stored._render_version,
                args=args,
                kwargs={},
            )
            for _ in range(2)
        ]
    )
    assert await StoredPdf.count() == 1
    stored_row = await StoredPdf.select(StoredPdf.content).first()
    assert copies[0] == copies[1] == bytes(stored_row["content"])


async def test_cli_export_serves_the_stored_file(client: AsyncClient, tmp_path) -> None:
    location = await published(client)
    assert (await client.get(f"{location}/ar.pdf")).status_code == 200
    # Marked, so that a rendering (which would not carry the mark) cannot pass for it.
    marked = b"%PDF-1.7\n% the stored copy\n"
    await StoredPdf.update(
        {StoredPdf.content: marked, StoredPdf.sha256: hashlib.sha256(marked).hexdigest()},
        force=True,
    )
    output = tmp_path / "brief.pdf"
    slug = location.split("/")[2]
    result = run_voix("export", "brief", slug, "--lang", "ar", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes() == marked


async def test_briefs_published_before_versions_become_version_1(client: AsyncClient) -> None:
    world = await adopted_world()
    draft = await add_draft(world.table_a, slug="ancienne")
    await Brief.update({Brief.version: services.LEGACY}).where(Brief.id == draft["id"])
    assert await services.freeze_legacy() == 1
    assert await services.freeze_legacy() == 0
    assert (await client.get("/briefs/ancienne/v/1")).status_code == 200
    assert (await Brief.select(Brief.version).first())["version"] == 1
