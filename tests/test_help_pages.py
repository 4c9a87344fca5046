"""Help pages and legal pages (issue 12): every language, the consent box's link, and the
organisation's own wording of a legal page, edited by its coordinators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from audit.models import AuditEntry
from help.content import LEGAL_KINDS, TOPICS
from help.models import LegalText
from help.services import BODY_MAX, legal_html
from voix import db

from .factories import build_world, post_form, sign_in, sign_out, t

PAGES = ["/help", *(f"/help/{slug}" for slug in TOPICS), *(f"/legal/{k}" for k in LEGAL_KINDS)]
DIRECTIONS = {"fr": "ltr", "ar": "rtl", "en": "ltr"}
PRIVACY_EDIT = "/organisations/avec-nous/legal/privacy/edit"
DEFAULT_NOTE = (
    "This is the default text. The coordinators of the association can complete it and reword it."
)
TEXT = (
    "## Qui traite vos données\n\n"
    "**Avec Nous**, 12 rue des Flamants, 13014 Marseille. "
    "[Écrire](mailto:contact@avec-nous.example)\n\n"
    "<script>alert('x')</script><p onclick=\"alert(1)\">Cliquez</p> "
    "[piège](javascript:alert(1))"
)


@pytest.fixture(autouse=True)
async def no_legal_texts() -> AsyncIterator[None]:
    """The suite's clean-up empties the organisations; their texts go first, here."""
    yield
    async with db.engine().transaction():
        await db.engine().run_ddl('DELETE FROM "legal_text"')


async def journal(action: str = "legal.updated") -> list[dict[str, Any]]:
    return (
        await AuditEntry.select(
            AuditEntry.action, AuditEntry.organisation_id, AuditEntry.subject, AuditEntry.details
        )
        .where(AuditEntry.action == action)
        .output(load_json=True)
    )


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
async def test_help_and_legal_pages_answer_in_each_language(client, lang: str) -> None:
    await build_world()
    for path in PAGES:
        response = await client.get(f"{path}?lang={lang}")
        assert response.status_code == 200, path
        assert f'<html lang="{lang}" dir="{DIRECTIONS[lang]}">' in response.text, path
        assert "<h1>" in response.text
    votes = await client.get(f"/help/votes?lang={lang}")
    for heading in ("Majority judgment", "Approval", "The quorum", "The shared tablet"):
        assert t(heading, lang) in votes.text
    home = await client.get(f"/?lang={lang}")
    for path, label in (
        ("/help", "Help"),
        ("/legal/notice", "Legal notice"),
        ("/legal/privacy", "Privacy"),
        ("/legal/accessibility", "Accessibility: partially compliant"),
    ):
        assert f'<a href="{path}">{t(label, lang)}</a>' in home.text


async def test_each_organisation_has_its_part_and_the_statement_says_partially_compliant(
    client,
) -> None:
    await build_world()
    page = await client.get("/legal/accessibility?lang=fr")
    assert t("Partially compliant.") in page.text
    assert t("Known non-conformities") in page.text
    for slug, name in (
        ("avec-nous", "Avec Nous"),
        ("collectif-des-femmes", "Collectif Des Femmes"),
    ):
        assert f'id="org-{slug}"' in page.text
        assert f"<bdi>{name}</bdi>" in page.text
    notice = await client.get("/legal/notice?lang=ar")
    # The tables each association runs, listed in the reader's language.
    assert "Flamants Iris" in notice.text
    assert "Les Aygalades" in notice.text


async def test_unknown_pages_are_not_found(client) -> None:
    for path in ("/help/nothing", "/legal/nothing", "/legal", "/help/votes/more"):
        assert (await client.get(path)).status_code == 404, path
    for path in ("/help/Votes", "/legal/privacy%00", "/legal/priv%C3%A9"):
        assert (await client.get(path)).status_code == 400, path  # not a slug


async def test_the_consent_box_of_in_person_registration_links_the_privacy_page(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    page = await client.get("/tables/flamants-iris/residents")
    assert page.status_code == 200
    consent = page.text.split('name="consent"')[0].rsplit('<div class="field', 1)[1]
    assert 'href="/legal/privacy"' in consent
    assert (await client.get("/legal/privacy")).status_code == 200


async def test_a_coordinator_words_their_organisation_page_sanitised_and_journaled(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    editor = await client.get(f"{PRIVACY_EDIT}?language=fr")
    assert editor.status_code == 200
    assert 'name="body"' in editor.text

    saved = await post_form(client, PRIVACY_EDIT, {"language": "fr", "body": TEXT})
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{PRIVACY_EDIT}?language=fr"
    (row,) = await LegalText.select().where(LegalText.kind == "privacy")
    assert row["version"] == 1
    assert row["language"] == "fr"
    assert row["updated_by"] == world.users["coordinator_a"]
    assert row["body"].startswith("## Qui traite vos données")
    html = row["body_html"]
    assert "<script" not in html
    assert "alert('x')" not in html  # a script goes with its content
    assert "onclick" not in html
    assert 'href="javascript:' not in html  # left as plain text, inert
    assert "<h3>Qui traite vos données</h3>" in html  # the page's h1 and h2 come first
    assert '<a href="mailto:contact@avec-nous.example"' in html

    (entry,) = await journal()
    assert entry["organisation_id"] == world.table_a["organisation"]
    assert entry["subject"] == "legal:privacy:fr"
    assert entry["details"]["version"] == 1

    sign_out(client)
    page = await client.get("/legal/privacy?lang=fr")
    own, other = page.text.split('id="org-avec-nous"')[1].split('id="org-collectif-des-femmes"')
    assert "<h3>Qui traite vos données</h3>" in own
    assert '<div class="legal-body" lang="fr" dir="ltr">' in own
    assert "<script>alert" not in page.text
    # The other organisation keeps the default text.
    assert "Qui traite vos données" not in other
    assert t(DEFAULT_NOTE) in other

    # An Arabic reader sees the French text, said so, until there is an Arabic one.
    arabic = await client.get("/legal/privacy?lang=ar")
    assert '<div class="legal-body" lang="fr" dir="ltr">' in arabic.text
    await sign_in(client, world.users["coordinator_a"])
    body = "## المسؤول عن المعالجة\n\nجمعية Avec Nous"
    saved = await post_form(client, PRIVACY_EDIT, {"language": "ar", "body": body})
    assert saved.status_code == 303
    arabic = await client.get("/legal/privacy?lang=ar")
    assert '<div class="legal-body" lang="ar" dir="rtl"><h3>المسؤول عن المعالجة</h3>' in arabic.text

    # The same text again is no new version; an empty one gives the default back.
    await post_form(client, PRIVACY_EDIT, {"language": "fr", "body": TEXT})
    assert await LegalText.count().where(LegalText.language == "fr") == 1
    emptied = await post_form(client, PRIVACY_EDIT, {"language": "fr", "body": "  "})
    assert emptied.status_code == 303
    versions = (
        await LegalText.select(LegalText.version, LegalText.body)
        .where(LegalText.language == "fr")
        .order_by(LegalText.version)
    )
    assert [(v["version"], v["body"]) for v in versions] == [(1, row["body"]), (2, "")]
    page = await client.get("/legal/privacy?lang=en")
    own = page.text.split('id="org-avec-nous"')[1].split('id="org-collectif-des-femmes"')[0]
    assert "Qui traite vos données" not in own  # the French text is gone, the Arabic stays
    assert '<div class="legal-body" lang="ar" dir="rtl">' in own
    editor = await client.get(f"{PRIVACY_EDIT}?language=fr&lang=fr")
    assert t("(empty: the default text is shown)") in editor.text
    assert len(await journal()) == 3


async def test_an_administrator_may_edit_too(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["admin"])
    saved = await post_form(
        client,
        "/organisations/collectif-des-femmes/legal/notice/edit",
        {"language": "en", "body": "Hi"},
    )
    assert saved.status_code == 303
    assert await LegalText.count() == 1


@pytest.mark.parametrize(
    ("person", "status"),
    [
        ("coordinator_b", 403),  # the other organisation's coordinator
        ("facilitator_a", 403),  # runs a table of this organisation, is not its coordinator
        ("resident_a", 403),
        ("outsider", 403),
        (None, 401),
    ],
)
async def test_others_may_not_edit_an_organisation_page(
    client, person: str | None, status: int
) -> None:
    world = await build_world()
    if person:
        await sign_in(client, world.users[person])
    else:
        sign_out(client)
    refused = await post_form(client, PRIVACY_EDIT, {"language": "fr", "body": "Texte pirate"})
    assert refused.status_code == status
    form = await client.get(PRIVACY_EDIT, follow_redirects=False)
    if person:
        assert form.status_code == 403
    else:
        assert form.status_code == 303
        assert form.headers["location"].startswith("/login")
    page = await client.get("/legal/privacy")
    assert "Texte pirate" not in page.text
    assert PRIVACY_EDIT not in page.text  # no edit link for them
    assert await LegalText.count() == 0
    assert await journal() == []


async def test_a_coordinator_confirms_their_code_first(client) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"], verified=False)
    form = await client.get(PRIVACY_EDIT, follow_redirects=False)
    assert form.status_code == 303
    # To the code step, or to set two-step sign-in up first (this coordinator has none yet).
    assert form.headers["location"].startswith(("/login/verify", "/account?next="))
    refused = await post_form(client, PRIVACY_EDIT, {"language": "fr", "body": "Texte"})
    assert refused.status_code == 401
    assert await LegalText.count() == 0


@pytest.mark.parametrize(
    ("url", "form", "status"),
    [
        (PRIVACY_EDIT, {"language": "xx", "body": "Texte"}, 400),
        (PRIVACY_EDIT, {"body": "Texte"}, 400),
        (PRIVACY_EDIT, {"language": "fr", "body": "a" * (BODY_MAX + 1)}, 400),
        ("/organisations/avec-nous/legal/nothing/edit", {"language": "fr", "body": "T"}, 404),
        ("/organisations/nobody/legal/privacy/edit", {"language": "fr", "body": "T"}, 404),
        ("/organisations/Avec-Nous/legal/privacy/edit", {"language": "fr", "body": "T"}, 400),
    ],
)
async def test_bad_input_changes_nothing(
    client, url: str, form: dict[str, Any], status: int
) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    response = await post_form(client, url, form)
    assert response.status_code == status
    if status == 400 and url == PRIVACY_EDIT:
        assert '<textarea id="f-body"' in response.text  # the form again, with what was typed
        assert 'class="error"' in response.text
    assert await LegalText.count() == 0
    assert await journal() == []


def test_markdown_comes_out_inert() -> None:
    html = legal_html(
        "# Titre\n\n<iframe src=x></iframe><img src=x onerror=alert(1)>"
        '[a](data:text/html,x) <a href="javascript:alert(1)">b</a>\n\n###### petit'
    )
    assert "<h3>Titre</h3>" in html
    assert "<h4>petit</h4>" in html
    for bad in ("<iframe", "<img", "onerror", 'href="data:', "javascript:"):
        assert bad not in html
