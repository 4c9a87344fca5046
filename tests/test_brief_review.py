"""What an outside review of the briefs found, kept found: a draft's words never reach the
public before they are published, a version's files say when they change, a hidden proposal's
photo goes with it, an erased resident is named nowhere, an archived institution is sent
nothing, and a translation is tagged with its own language."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime

from httpx import AsyncClient
from pypdf import PdfReader

from accounts import rights
from exports.models import BriefSent, BriefSignatory, BriefVersion
from proposals.models import ADOPTED, Proposal
from tables.models import Institution
from tests.factories import add_institution, add_proposal, build_world, post_form, sign_in, sign_out
from tests.test_brief_compose import add_photo, form
from translations import services as translations
from voix.permissions import Principal


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def published_world(client: AsyncClient):
    """A brief composed through its pages, with a photo, a resident who agreed to sign, two
    addressees, published as version 1."""
    world = await build_world()
    proposal = await add_proposal(
        world.table_a, "Réparer les ascenseurs", status=ADOPTED, author=world.users["resident_a"]
    )
    photo = await add_photo(proposal, consented=True)
    mairie = await add_institution(world.table_a, "Mairie de secteur")
    landlord = await add_institution(world.table_a, "Bailleur bientôt archivé")
    await sign_in(client, world.users["facilitator_a"])
    created = await post_form(
        client, "/tables/flamants-iris/briefs", {"title": "Titre publié", "language": "fr"}
    )
    slug = created.headers["location"].split("/")[2]
    saved = await post_form(
        client,
        f"/briefs/{slug}/edit",
        await form(
            slug,
            addressee=[str(mairie), str(landlord)],
            include=[str(proposal)],
            introduction="# Titre\n\nLe contexte.",
            resident=str(world.users["resident_a"]),
            resident_consent="yes",
            **{f"photo-{proposal}": str(photo)},
        ),
    )
    assert saved.status_code == 303, saved.text[-2000:]
    return world, slug, proposal, photo, mairie, landlord


async def test_an_institution_archived_after_the_draft_was_saved_is_sent_nothing(
    client: AsyncClient,
) -> None:
    _world, slug, *_, mairie, landlord = await published_world(client)
    await Institution.update({Institution.archived_at: datetime.now(UTC)}).where(
        Institution.id == landlord
    )
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 303
    version = await BriefVersion.select().first()
    assert "Bailleur" not in version["document"]
    assert {row["institution"] for row in await BriefSent.select(BriefSent.institution)} == {mairie}


async def test_a_draft_s_words_stay_unpublished_everywhere(client: AsyncClient) -> None:
    world, slug, *_, mairie, _landlord = await published_world(client)
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 303
    secret = await add_institution(world.table_a, "INSTITUTION-SECRETE")
    edited = await post_form(
        client,
        f"/briefs/{slug}/edit",
        await form(slug, title="TITRE-NON-PUBLIÉ", addressee=[str(mairie), str(secret)]),
    )
    assert edited.status_code == 303
    reminder = await client.get(f"/tables/flamants-iris/follow-up/briefs/{slug}/reminders/{mairie}")
    assert reminder.status_code == 200
    assert "TITRE-NON-PUBLIÉ" not in pdf_text(reminder.content)
    assert "Titre publié" in pdf_text(reminder.content)
    sign_out(client)
    for url in (
        "/tables/flamants-iris/follow-up",
        "/organisations/avec-nous/follow-up",
        "/api/v1/tables/flamants-iris/follow-up",
        "/api/v1/organisations/avec-nous/follow-up",
        "/tables/flamants-iris",
    ):
        body = (await client.get(url)).text
        assert "TITRE-NON-PUBLIÉ" not in body, url
        assert "INSTITUTION-SECRETE" not in body, url
    assert "Titre publié" in (await client.get("/tables/flamants-iris/follow-up")).text


async def test_a_hidden_proposal_s_photo_leaves_the_version_too(client: AsyncClient) -> None:
    _world, slug, proposal, photo, *_ = await published_world(client)
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 303
    sign_out(client)
    shown = await client.get(f"/briefs/{slug}/v/1/photos/{photo}")
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "public, no-cache"
    await Proposal.update({Proposal.hidden_at: datetime.now(UTC)}).where(Proposal.id == proposal)
    assert (await client.get(f"/briefs/{slug}/v/1/photos/{photo}")).status_code == 404


async def test_an_erased_resident_is_named_in_no_version(client: AsyncClient) -> None:
    world, slug, *_ = await published_world(client)
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 303
    before = await client.get(f"/briefs/{slug}/v/1/fr.pdf")
    assert "Resident-A" in pdf_text(before.content)
    await rights.erase(Principal(user_id=world.users["resident_a"], verified=True), None, True)
    assert "Resident-A" not in (await client.get(f"/briefs/{slug}/v/1")).text
    after = await client.get(f"/briefs/{slug}/v/1/fr.pdf")
    assert "Resident-A" not in pdf_text(after.content)
    assert await BriefSignatory.count().where(BriefSignatory.name == "Resident-A") == 0


async def test_a_version_s_file_says_what_it_is_and_when_it_changed(
    client: AsyncClient,
) -> None:
    """A translation of the version changes its Arabic file (the number stays): caches ask
    again and compare fingerprints; the page shows the fingerprint of the file served."""
    world, slug, *_ = await published_world(client)
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 303
    first = await client.get(f"/briefs/{slug}/v/1/ar.pdf")
    assert first.headers["cache-control"] == "public, no-cache"
    assert first.headers["etag"] == f'"{hashlib.sha256(first.content).hexdigest()}"'
    version = await BriefVersion.select(BriefVersion.id).first()
    original = await translations.get_original("brief", version["id"])
    assert original is not None
    facilitator = Principal(
        user_id=world.users["facilitator_a"],
        table_roles={world.table_a["id"]: "facilitator"},
        verified=True,
    )
    await translations.save(
        facilitator,
        world.table_a,
        original,
        {"language": "ar", "written_in": "fr", "field-context": "# عنوان\n\nالسياق بالعربية"},
    )
    second = await client.get(f"/briefs/{slug}/v/1/ar.pdf")
    assert second.content != first.content
    page = (await client.get(f"/briefs/{slug}/v/1?lang=ar")).text
    assert hashlib.sha256(second.content).hexdigest() in page
    # The title was not translated: it keeps its own language; the context is Arabic, and
    # its heading sits under the page's "Context" heading, as the original's does.
    assert re.search(r'<h1 lang="fr"', page)
    assert re.search(r'<div class="richtext" lang="ar"[^>]*>\s*<h3>عنوان</h3>', page)
    french = (await client.get(f"/briefs/{slug}/v/1?lang=fr")).text
    assert re.search(r"<h3>Titre</h3>", french)


async def test_a_version_number_out_of_range_is_not_found(client: AsyncClient) -> None:
    _world, slug, *_ = await published_world(client)
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 303
    for url in (
        f"/briefs/{slug}/v/99999999999999999999",
        f"/briefs/{slug}/v/99999999999/fr.pdf",
        f"/briefs/{slug}/v/99999999999/photos/1",
        f"/briefs/{slug}/v/0",
    ):
        assert (await client.get(url)).status_code in (400, 404), url
