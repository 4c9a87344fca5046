"""Composing a brief: the draft's creation, its one edit form, consents (photos, signatories),
concurrency, permissions, and its preview."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from httpx import AsyncClient

from accounts.services import open_session
from audit.models import AuditEntry
from exports import drafts
from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory
from proposals.models import ADOPTED, Media
from tables.models import Institution
from voix.i18n import catalog
from voix.web import SESSION_COOKIE

from .conftest import make_client
from .factories import (
    add_institution,
    add_proposal,
    build_world,
    csrf_token,
    post_form,
    sign_in,
    sign_out,
    t,
)

TITLE = "Rénovation des Flamants : nos priorités"
STALE = (
    "Another facilitator changed this draft while you were editing it, so your changes were not "
    "saved. Open the draft again to see theirs; what you wrote is still below, to copy."
)
NO_CONSENT = (
    "Please confirm that this person agreed to be named in this document: nobody is named "
    "without their agreement."
)
PHOTO_REFUSED = (
    "The author has not agreed to this photo being printed: choose another one, or none."
)


async def adopted_world() -> tuple[Any, dict[str, int]]:
    world = await build_world()
    proposals = {
        "lift": await add_proposal(
            world.table_a,
            "Réparer les ascenseurs de la tour G",
            status=ADOPTED,
            author=world.users["resident_a"],
        ),
        "bins": await add_proposal(
            world.table_a,
            "حاويات نفايات إضافية قرب السوق",
            language="ar",
            status=ADOPTED,
            theme="cleanliness",
            body="الحاويات الموجودة تمتلئ بسرعة يوم السوق.",
        ),
        "idea": await add_proposal(world.table_a, "Une idée encore en discussion"),
        "bench": await add_proposal(
            world.table_a, "Des bancs place Dervieux", status="transmitted", theme="public_space"
        ),
        "hidden": await add_proposal(
            world.table_a,
            "Une proposition masquée",
            status=ADOPTED,
            hidden_at=datetime.now(UTC),
            hidden_reason="Propos injurieux",
        ),
    }
    return world, proposals


async def create_draft(client: AsyncClient, title: str = TITLE, language: str = "fr") -> str:
    response = await post_form(
        client, "/tables/flamants-iris/briefs", {"title": title, "language": language}
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/briefs/")
    assert location.endswith("/edit")
    return location.removeprefix("/briefs/").removesuffix("/edit")


async def draft(slug: str) -> dict[str, Any]:
    return await Brief.select().where(Brief.slug == slug).first()


async def form(slug: str, **changes: Any) -> dict[str, Any]:
    """The edit form as the page sends it, unchanged but for `changes`."""
    brief = await draft(slug)
    items = await (
        BriefItem.select().where(BriefItem.brief == brief["id"]).order_by(BriefItem.position)
    )
    data: dict[str, Any] = {
        "title": brief["title"],
        "language": brief["language"],
        "introduction": brief["introduction"],
        "updated_at": drafts.stamp(brief["updated_at"]),
        "show_participation": "yes",
        "show_votes": "yes",
        "include": [str(item["proposal"]) for item in items],
        **{f"position-{item['proposal']}": str(item["position"]) for item in items},
        "addressee": [
            str(row["institution"])
            for row in await BriefAddressee.select(BriefAddressee.institution)
            .where(BriefAddressee.brief == brief["id"])
            .order_by(BriefAddressee.position)
        ],
    }
    data.update(changes)
    return data


async def add_photo(proposal_id: int, *, consented: bool = False) -> int:
    rows = await Media.insert(
        Media(
            proposal=proposal_id,
            kind="photo",
            token=f"photo-{proposal_id}-{datetime.now(UTC).timestamp()}",
            content_type="image/jpeg",
            data=b"\xff\xd8\xff\xd9",
            size=4,
            created_at=datetime.now(UTC),
            publication_consent_at=datetime.now(UTC) if consented else None,
        )
    ).returning(Media.id)
    return int(rows[0]["id"])


async def test_a_facilitator_creates_a_draft_of_the_adopted_proposals(
    client: AsyncClient,
) -> None:
    world, proposals = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    form_page = await client.get("/tables/flamants-iris/briefs/new")
    assert form_page.status_code == 200
    slug = await create_draft(client)
    assert slug == "renovation-des-flamants-nos-priorites"
    brief = await draft(slug)
    assert brief["version"] == 0
    assert brief["language"] == "fr"
    assert brief["addressed_to"] == ""
    items = (
        await BriefItem.select().where(BriefItem.brief == brief["id"]).order_by(BriefItem.position)
    )
    # The adopted proposals, in their order; never a hidden one, nor one still discussed.
    assert [item["proposal"] for item in items] == [proposals["lift"], proposals["bins"]]
    assert await BriefAddressee.count() == 0
    edit = await client.get(f"/briefs/{slug}/edit")
    assert edit.status_code == 200
    assert "Réparer les ascenseurs de la tour G" in edit.text
    assert "Des bancs place Dervieux" in edit.text  # sent already: may be carried again
    assert "Une idée encore en discussion" not in edit.text
    assert "Une proposition masquée" not in edit.text
    assert t("Housing") in edit.text
    assert t("Cleanliness") in edit.text
    assert await AuditEntry.count().where(AuditEntry.action == "brief.draft_created") == 1
    # The table's page lists the draft to its facilitators only.
    assert f"/briefs/{slug}/edit" in (await client.get("/tables/flamants-iris")).text
    sign_out(client)
    await sign_in(client, world.users["resident_a"])
    assert f"/briefs/{slug}" not in (await client.get("/tables/flamants-iris")).text


@pytest.mark.parametrize(
    ("title", "language", "expected"),
    [
        ("حاويات نفايات إضافية قرب السوق", "ar", "hwyt-nfyt-dfy-qrb-lswq"),
        ("Привет, Марсель", "fr", "privet-marsel"),
    ],
)
async def test_a_title_in_any_script_gives_a_readable_address(
    client: AsyncClient, title: str, language: str, expected: str
) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client, title, language)
    assert slug == expected
    assert (await draft(slug))["title"] == title
    # Another brief with the same title gets its own address.
    sign_out(client)
    await sign_in(client, world.users["coordinator_a"])
    assert await create_draft(client, title, language) == f"{expected}-2"


async def test_a_title_with_nothing_to_transliterate_is_numbered(client: AsyncClient) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    first = await create_draft(client, "🏠🚧🧹")
    second = await create_draft(client, "🌳🌳🌳")
    ids = [(await draft(slug))["id"] for slug in (first, second)]
    assert [first, second] == [f"note-{ids[0]}", f"note-{ids[1]}"]
    assert (await client.get(f"/briefs/{first}/edit")).status_code == 200


async def test_a_second_click_returns_the_same_draft(client: AsyncClient) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    first = await create_draft(client)
    assert await create_draft(client) == first
    assert await Brief.count() == 1
    assert await create_draft(client, TITLE, "en") != first  # another language: another draft
    assert await Brief.count() == 2


async def test_concurrent_clicks_make_one_draft(app: object, client: AsyncClient) -> None:
    world, _ = await adopted_world()
    token = await csrf_token(client)
    session = await open_session(world.users["facilitator_a"], verified=True)

    async def click() -> httpx.Response:
        async with make_client(app) as browser:  # each click from its own browser tab
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await browser.post(
                "/tables/flamants-iris/briefs",
                data={"title": TITLE, "language": "fr", "_csrf_token": token},
            )

    responses = await asyncio.gather(*(click() for _ in range(6)))
    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["location"] for r in responses}) == 1
    assert await Brief.count() == 1
    assert await BriefItem.count() == 2


async def test_the_edit_form_saves_the_whole_draft(client: AsyncClient) -> None:
    world, proposals = await adopted_world()
    conseil = await add_institution(world.table_a, "Conseil citoyen du 14e")
    metropole = await add_institution(world.table_a, "Métropole Aix-Marseille-Provence")
    archived = await add_institution(world.table_a, "Ancienne mairie de secteur")
    other = await add_institution(world.table_b, "Bailleur des Aygalades")
    await Institution.update({Institution.archived_at: datetime.now(UTC)}).where(
        Institution.id == archived
    )
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    page = await client.get(f"/briefs/{slug}/edit")
    assert "Métropole Aix-Marseille-Provence" in page.text
    assert "Ancienne mairie de secteur" not in page.text  # archived
    assert "Bailleur des Aygalades" not in page.text  # another organisation's
    lift, bins, bench = proposals["lift"], proposals["bins"], proposals["bench"]
    data = await form(
        slug,
        title="Nos priorités pour 2027",
        language="fr",
        introduction="## Le contexte\n\nLa table a **voté** le 3 mars.",
        addressee=[str(metropole), str(conseil)],
        include=[str(lift), str(bins), str(bench)],
        **{f"position-{lift}": "3", f"position-{bins}": "1", f"position-{bench}": "2"},
        show_votes="",
        org_name="Association Avec Nous",
        org_capacity="présidente",
    )
    saved = await post_form(client, f"/briefs/{slug}/edit", data)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/briefs/{slug}/edit"
    brief = await draft(slug)
    assert brief["title"] == "Nos priorités pour 2027"
    assert brief["introduction"].startswith("## Le contexte")
    assert brief["show_votes"] is False
    assert brief["show_participation"] is True
    assert brief["addressed_to"] == "Métropole Aix-Marseille-Provence, Conseil citoyen du 14e"
    assert slug == (await draft(slug))["slug"]  # the address stays when the title changes
    items = (
        await BriefItem.select().where(BriefItem.brief == brief["id"]).order_by(BriefItem.position)
    )
    assert [(i["proposal"], i["position"]) for i in items] == [(bins, 1), (bench, 2), (lift, 3)]
    addressees = await BriefAddressee.select().order_by(BriefAddressee.position)
    assert [a["institution"] for a in addressees] == [metropole, conseil]
    signatory = await BriefSignatory.select().first()
    assert (signatory["name"], signatory["capacity"], signatory["user"]) == (
        "Association Avec Nous",
        "présidente",
        None,
    )
    # A forged addressee (archived, or another organisation's) is refused.
    for forged in (archived, other):
        refused = await post_form(
            client, f"/briefs/{slug}/edit", await form(slug, addressee=[str(forged)])
        )
        assert refused.status_code == 400
        assert t("Please choose one of the options offered.") in refused.text
    # Removing the signatory.
    removed = await post_form(
        client, f"/briefs/{slug}/edit", await form(slug, remove=[str(signatory["id"])])
    )
    assert removed.status_code == 303
    assert await BriefSignatory.count() == 0
    # Save and preview goes to the preview.
    then = await post_form(client, f"/briefs/{slug}/edit", await form(slug, then="preview"))
    assert then.headers["location"] == f"/briefs/{slug}/preview"


async def test_bad_input_is_refused_translated_and_nothing_changes(client: AsyncClient) -> None:
    world, proposals = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    before = await draft(slug)
    lift = proposals["lift"]
    data = await form(
        slug,
        title="",
        introduction="x" * 8001,
        language="de",
        include=[str(lift)],
        **{f"position-{lift}": "premier"},
        org_capacity="trésorière",
    )
    refused = await post_form(client, f"/briefs/{slug}/edit?lang=fr", data)
    assert refused.status_code == 400
    assert t("This field is required.") in refused.text
    assert t("Please keep it under %(max)d characters.", max=8000) in refused.text
    assert t("Please choose one of the options offered.") in refused.text
    assert t("Please give a whole number from %(min)d to %(max)d.", min=1, max=999) in refused.text
    assert f'aria-describedby="f-position-{lift}-error"' in refused.text
    assert "trésorière" in refused.text  # what was typed is shown again
    after = await draft(slug)
    assert after == before
    assert await BriefItem.count() == 2
    assert await BriefSignatory.count() == 0
    # In Arabic too.
    arabic = await post_form(client, f"/briefs/{slug}/edit?lang=ar", data)
    assert t("This field is required.", "ar") in arabic.text


async def test_a_stale_form_is_refused_instead_of_overwriting(
    app: object, client: AsyncClient
) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    loaded = await form(slug)  # the first facilitator opens the page
    other = await form(slug, title="Le titre de l'autre facilitatrice")
    assert (await post_form(client, f"/briefs/{slug}/edit", other)).status_code == 303
    stale = await post_form(client, f"/briefs/{slug}/edit", {**loaded, "title": "Mon titre"})
    assert stale.status_code == 409
    assert t(STALE) in stale.text
    assert "Mon titre" in stale.text  # still there, to copy
    assert (await draft(slug))["title"] == "Le titre de l'autre facilitatrice"

    # Saves sent at once with the same form: one is saved, the others refused.
    token = await csrf_token(client)
    session = await open_session(world.users["facilitator_a"], verified=True)
    current = await form(slug)

    async def save(n: int) -> httpx.Response:
        async with make_client(app) as browser:
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await browser.post(
                f"/briefs/{slug}/edit",
                data={**current, "title": f"Titre numéro {n}", "_csrf_token": token},
            )

    responses = await asyncio.gather(*(save(n) for n in range(5)))
    assert sorted(r.status_code for r in responses) == [303, 409, 409, 409, 409]
    winner = next(n for n, r in enumerate(responses) if r.status_code == 303)
    assert (await draft(slug))["title"] == f"Titre numéro {winner}"


async def test_a_photo_is_offered_and_saved_only_with_its_authors_consent(
    client: AsyncClient,
) -> None:
    world, proposals = await adopted_world()
    lift = proposals["lift"]
    photo = await add_photo(lift)
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    page = await client.get(f"/briefs/{slug}/edit")
    assert f'name="photo-{lift}" value="{photo}"' not in page.text
    # (the catalog's apostrophes are printed as they are)
    assert html.unescape(t("The author has not agreed to publication.")) in page.text
    forged = await post_form(
        client, f"/briefs/{slug}/edit", await form(slug, **{f"photo-{lift}": str(photo)})
    )
    assert forged.status_code == 400
    assert t(PHOTO_REFUSED) in forged.text
    assert (await BriefItem.select(BriefItem.photo).where(BriefItem.proposal == lift).first())[
        "photo"
    ] is None

    # A facilitator records it only saying the author agreed.
    consent = f"/proposals/{lift}/media/{photo}/publication"
    unsaid = await post_form(client, consent, {"action": "allow"})
    assert unsaid.status_code == 400
    assert t("Please confirm that the author agreed to it.") in unsaid.text
    assert (await Media.select().where(Media.id == photo).first())["publication_consent_at"] is None
    said = await post_form(client, consent, {"action": "allow", "author_agreed": "yes"})
    assert said.status_code == 303
    row = await Media.select().where(Media.id == photo).first()
    assert row["publication_consent_at"] is not None
    assert row["publication_consent_recorded_by"] == world.users["facilitator_a"]

    page = await client.get(f"/briefs/{slug}/edit")
    assert f'name="photo-{lift}" value="{photo}"' in page.text
    saved = await post_form(
        client, f"/briefs/{slug}/edit", await form(slug, **{f"photo-{lift}": str(photo)})
    )
    assert saved.status_code == 303
    assert (await BriefItem.select(BriefItem.photo).where(BriefItem.proposal == lift).first())[
        "photo"
    ] == photo
    preview = await client.get(f"/briefs/{slug}/preview")
    assert "/media/photo-" in preview.text

    # The author withdraws it: the draft no longer prints it.
    sign_out(client)
    await sign_in(client, world.users["resident_a"])
    assert "photo-publication" in (await client.get(f"/proposals/{lift}")).text
    withdrawn = await post_form(client, consent, {"action": "withdraw"})
    assert withdrawn.status_code == 303
    assert (await Media.select().where(Media.id == photo).first())["publication_consent_at"] is None
    assert (await BriefItem.select(BriefItem.photo).where(BriefItem.proposal == lift).first())[
        "photo"
    ] is None
    # And gives it again themselves: no checkbox to tick, nobody recorded it for them.
    assert (await post_form(client, consent, {"action": "allow"})).status_code == 303
    assert (await Media.select().where(Media.id == photo).first())[
        "publication_consent_recorded_by"
    ] is None
    actions = [row["action"] for row in await AuditEntry.select(AuditEntry.action)]
    assert actions.count("photo.publication_allowed") == 2
    assert actions.count("photo.publication_withdrawn") == 1


async def test_only_the_author_or_the_tables_managers_decide_on_a_photo(
    client: AsyncClient,
) -> None:
    world, proposals = await adopted_world()
    photo = await add_photo(proposals["lift"])
    other_photo = await add_photo(proposals["bins"])
    consent = f"/proposals/{proposals['lift']}/media/{photo}/publication"
    allow = {"action": "allow", "author_agreed": "yes"}
    assert (await post_form(client, consent, allow)).status_code == 401
    for role in ("facilitator_b", "coordinator_b", "resident_b"):
        await sign_in(client, world.users[role])
        assert (await post_form(client, consent, allow)).status_code == 403, role
        sign_out(client)
    await sign_in(client, world.users["facilitator_a"])
    # A photo of another proposal is not this one's.
    mismatched = f"/proposals/{proposals['lift']}/media/{other_photo}/publication"
    assert (await post_form(client, mismatched, allow)).status_code == 404
    assert await Media.count().where(Media.publication_consent_at.is_not_null()) == 0


async def test_a_resident_is_named_only_with_their_consent_recorded(client: AsyncClient) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    resident = str(world.users["resident_a"])
    refused = await post_form(
        client,
        f"/briefs/{slug}/edit",
        await form(slug, resident=resident, resident_capacity="habitante"),
    )
    assert refused.status_code == 400
    assert t(NO_CONSENT) in refused.text
    assert await BriefSignatory.count() == 0
    # Someone who does not sit at the table cannot be chosen, consent or not.
    outsider = await post_form(
        client,
        f"/briefs/{slug}/edit",
        await form(slug, resident=str(world.users["resident_b"]), resident_consent="yes"),
    )
    assert outsider.status_code == 400
    assert await BriefSignatory.count() == 0
    agreed = await post_form(
        client,
        f"/briefs/{slug}/edit",
        await form(slug, resident=resident, resident_capacity="habitante", resident_consent="yes"),
    )
    assert agreed.status_code == 303
    signatory = await BriefSignatory.select().first()
    assert signatory["user"] == world.users["resident_a"]
    assert signatory["name"] == "Resident-A"
    assert signatory["consent_recorded_by"] == world.users["facilitator_a"]
    assert signatory["consent_at"] is not None
    page = await client.get(f"/briefs/{slug}/edit")
    assert "Resident-A" in page.text
    assert "habitante" in page.text


ROLES_STATUS = [
    ("facilitator_a", 200),
    ("coordinator_a", 200),
    ("admin", 200),
    ("facilitator_b", 403),
    ("coordinator_b", 403),
    ("resident_a", 403),
    ("outsider", 403),
]


@pytest.mark.parametrize(("role", "status"), ROLES_STATUS)
async def test_only_the_tables_managers_compose_its_briefs(
    client: AsyncClient, role: str, status: int
) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    data = await form(slug, title="Changé par quelqu'un d'autre")
    sign_out(client)
    await sign_in(client, world.users[role])
    for path in (
        f"/briefs/{slug}/edit",
        f"/briefs/{slug}/preview",
        "/tables/flamants-iris/briefs/new",
    ):
        assert (await client.get(path)).status_code == status, path
    saved = await post_form(client, f"/briefs/{slug}/edit", data)
    created = await post_form(
        client, "/tables/flamants-iris/briefs", {"title": "Une autre note", "language": "fr"}
    )
    published = await post_form(client, f"/briefs/{slug}/publish", {})
    if status == 403:
        assert saved.status_code == created.status_code == published.status_code == 403
        assert (await draft(slug))["title"] == TITLE
        assert await Brief.count() == 1
        assert (await draft(slug))["version"] == 0
    else:
        assert saved.status_code == created.status_code == 303


async def test_anonymous_is_sent_to_sign_in(client: AsyncClient) -> None:
    world, _ = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    sign_out(client)
    for path in (
        f"/briefs/{slug}/edit",
        f"/briefs/{slug}/preview",
        "/tables/flamants-iris/briefs/new",
    ):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    assert (await post_form(client, f"/briefs/{slug}/edit", await form(slug))).status_code == 401
    assert (await post_form(client, f"/briefs/{slug}/publish", {})).status_code == 401
    assert (await client.get("/briefs/nothing-here/edit")).status_code in (303, 404)


async def test_the_preview_renders_the_document(client: AsyncClient) -> None:
    world, _proposals = await adopted_world()
    conseil = await add_institution(world.table_a, "Conseil citoyen du 14e")
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    data = await form(
        slug,
        addressee=[str(conseil)],
        introduction="La table a **voté** <script>alert(1)</script>.",
        org_name="Association Avec Nous",
    )
    assert (await post_form(client, f"/briefs/{slug}/edit", data)).status_code == 303
    preview = await client.get(f"/briefs/{slug}/preview?lang=fr")
    assert preview.status_code == 200
    text = preview.text
    assert t("Draft — not published") in text
    assert "Réparer les ascenseurs de la tour G" in text
    assert "حاويات نفايات إضافية قرب السوق" in text
    assert t("Housing") in text
    assert t("Cleanliness") in text
    assert "Conseil citoyen du 14e" in text
    assert "Association Avec Nous" in text
    assert "<strong>voté</strong>" in text
    assert "<script>alert" not in text
    held = catalog("fr").ngettext("%(num)d meeting held", "%(num)d meetings held", 0)
    assert held % {"num": 0} in text  # participation, counts only
    assert f'action="/briefs/{slug}/publish"' in text
    # The Arabic proposal is said untranslated to a French reader.
    assert t("Not translated yet — original text in %(language)s.", language="arabe") in text
    without = await post_form(
        client, f"/briefs/{slug}/edit", await form(slug, show_participation="")
    )
    assert without.status_code == 303
    assert held % {"num": 0} not in (await client.get(f"/briefs/{slug}/preview")).text
    arabic = await client.get(f"/briefs/{slug}/preview?lang=ar")
    assert arabic.status_code == 200
    assert 'dir="rtl"' in arabic.text


async def test_publishing_from_the_preview_makes_version_one(client: AsyncClient) -> None:
    world, _ = await adopted_world()
    conseil = await add_institution(world.table_a, "Conseil citoyen du 14e")
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    await post_form(client, f"/briefs/{slug}/edit", await form(slug, addressee=[str(conseil)]))
    published = await post_form(client, f"/briefs/{slug}/publish", {})
    assert published.status_code == 303
    assert published.headers["location"] == f"/briefs/{slug}/v/1"
    assert (await draft(slug))["version"] == 1
    page = await client.get(published.headers["location"])
    assert page.status_code == 200
    assert "Réparer les ascenseurs de la tour G" in page.text
    assert re.search(r"Draft — not published", page.text) is None


async def test_a_proposal_ticked_without_a_number_goes_last(client: AsyncClient) -> None:
    world, proposals = await adopted_world()
    await sign_in(client, world.users["facilitator_a"])
    slug = await create_draft(client)
    lift, bins, bench = proposals["lift"], proposals["bins"], proposals["bench"]
    data = await form(
        slug,
        include=[str(bench), str(lift), str(bins)],
        **{f"position-{bench}": "", f"position-{lift}": "2", f"position-{bins}": "1"},
    )
    assert (await post_form(client, f"/briefs/{slug}/edit", data)).status_code == 303
    items = await BriefItem.select().order_by(BriefItem.position)
    assert [(i["proposal"], i["position"]) for i in items] == [(bins, 1), (lift, 2), (bench, 3)]
