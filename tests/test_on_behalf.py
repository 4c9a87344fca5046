"""Supports and comments a facilitator enters for a resident of the table who asked them, as
proposals are: the resident's own (counted once), marked "recorded by", with the consent time,
audited, in the resident's data export, and kept when the facilitator's account is erased."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from httpx import AsyncClient

from accounts.services import load_principal, open_session
from audit.models import AuditEntry
from proposals import discussion, services
from proposals.models import Comment, Proposal, Support
from tables.models import FACILITATOR
from voix.forms import UserError
from voix.web import SESSION_COOKIE

from .conftest import make_client
from .factories import (
    PASSWORD,
    World,
    add_proposal,
    add_user,
    build_world,
    csrf_token,
    post_form,
    register_card_resident,
    seat,
    sign_in,
    t,
)

AGREED = {"consent": "yes"}


def support_url(proposal: int) -> str:
    return f"/proposals/{proposal}/on-behalf/support"


def comment_url(proposal: int) -> str:
    return f"/proposals/{proposal}/on-behalf/comments"


async def supports_of(proposal: int) -> int:
    """The count the lists show, kept by the transactions; checked against the rows too."""
    row = await Proposal.select(Proposal.supports).where(Proposal.id == proposal).first()
    assert row["supports"] == await Support.count().where(Support.proposal == proposal)
    return int(row["supports"])


async def audit_entries(action: str) -> list[dict[str, Any]]:
    rows = await AuditEntry.select(
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.table_id,
        AuditEntry.subject,
        AuditEntry.details,
    ).where(AuditEntry.action == action)
    for row in rows:  # JSON text on SQLite, a document on PostgreSQL
        if isinstance(row["details"], str):
            row["details"] = json.loads(row["details"])
    return rows


async def as_facilitator(client: AsyncClient, world: World) -> None:
    await sign_in(client, world.users["facilitator_a"])


async def test_a_facilitator_records_a_resident_s_support_and_comment(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    resident = world.users["resident_a"]
    await as_facilitator(client, world)

    page = await client.get(f"/proposals/{proposal}?lang=fr")
    form = page.text.split(f'action="{support_url(proposal)}"')[1].split("</form>")[0]
    # Residents of this table only, each name isolated; not the facilitator.
    assert f'<option value="{resident}" dir="auto">Resident-A</option>' in form
    assert f'value="{world.users["facilitator_a"]}"' not in form
    assert f'value="{world.users["resident_b"]}"' not in form

    given = await post_form(client, support_url(proposal), {"resident": str(resident), **AGREED})
    assert given.status_code == 303
    assert given.headers["location"] == f"/proposals/{proposal}#support"
    stored = await Support.select().first()
    assert stored["user"] == resident
    assert stored["recorded_by"] == world.users["facilitator_a"]
    assert stored["consent_recorded_at"] is not None
    assert await supports_of(proposal) == 1

    said = "Mon voisin du 5e monte à pied depuis un mois."
    written = await post_form(
        client, comment_url(proposal), {"resident": str(resident), "body": said, **AGREED}
    )
    assert written.status_code == 303
    comment = await Comment.select().first()
    assert comment["author"] == resident
    assert comment["recorded_by"] == world.users["facilitator_a"]
    assert comment["consent_recorded_at"] is not None
    assert comment["body"] == said

    # Anyone reading sees whose words they are and who wrote them down; the count is the same.
    await sign_in(client, world.users["resident_b"])
    for lang, marking in (
        ("fr", "Parole de <strong><bdi>Resident-A</bdi></strong>, recueillie par "),
        ("en", "Comment by <strong><bdi>Resident-A</bdi></strong>, recorded by "),
    ):
        page = await client.get(f"/proposals/{proposal}?lang={lang}")
        assert marking + "<bdi>Facilitator-A</bdi>" in page.text
        assert said in page.text
    assert "1 soutien" in (await client.get(f"/proposals/{proposal}?lang=fr")).text
    # Only those who may act on behalf are given the forms.
    assert support_url(proposal) not in page.text

    supported = await audit_entries("support.recorded_on_behalf")
    assert [(e["actor"], e["subject"], e["table_id"]) for e in supported] == [
        (world.users["facilitator_a"], f"proposal:{proposal}", world.table_a["id"])
    ]
    assert supported[0]["details"] == {"resident": resident}
    commented = await audit_entries("comment.recorded_on_behalf")
    assert [(e["subject"], e["details"]) for e in commented] == [
        (f"comment:{comment['id']}", {"proposal": proposal, "resident": resident})
    ]
    assert said not in json.dumps(commented)  # the act, not what was said

    # The journal names the acts in the coordinator's language.
    await sign_in(client, world.users["coordinator_a"])
    journal = await client.get(f"/organisations/{world.table_a['organisation_slug']}/audit?lang=en")
    assert "Support recorded on a resident's behalf" in journal.text
    assert "Comment recorded on a resident's behalf" in journal.text


async def test_a_support_recorded_for_a_resident_is_counted_once(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    resident = world.users["resident_a"]
    await as_facilitator(client, world)
    form = {"resident": str(resident), **AGREED}
    assert (await post_form(client, support_url(proposal), form)).status_code == 303
    again = await post_form(client, f"{support_url(proposal)}?lang=fr", form)
    assert again.status_code == 409
    assert t("This resident already supports this proposal. Each person supports it once.") in (
        again.text
    )
    # Nor can the resident add a second one of their own.
    await sign_in(client, resident)
    own = await post_form(client, f"/proposals/{proposal}/support", {})
    assert own.status_code == 409
    assert await supports_of(proposal) == 1
    assert len(await audit_entries("support.recorded_on_behalf")) == 1


async def test_two_clicks_at_once_store_one_support(client: AsyncClient, app: object) -> None:
    """The same support sent twice at the same moment (a double tap, two facilitators at the
    same meeting): the unique index keeps one, and the count stays exact."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    other = await add_user("facilitator-a2", "Facilitator-A2")
    await seat(other, world.table_a, FACILITATOR)
    token = await csrf_token(client)
    data = {"resident": str(world.users["resident_a"]), "_csrf_token": token, **AGREED}

    async def click(facilitator: int) -> httpx.Response:
        session = await open_session(facilitator, verified=True)
        async with make_client(app) as browser:  # each from its own browser
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await browser.post(support_url(proposal), data=data)

    responses = await asyncio.gather(
        click(world.users["facilitator_a"]), click(other), click(world.users["facilitator_a"])
    )
    assert sorted(r.status_code for r in responses) == [303, 409, 409]
    assert await Support.count() == 1
    assert await supports_of(proposal) == 1
    assert len(await audit_entries("support.recorded_on_behalf")) == 1  # the refused left none


async def test_the_services_refuse_a_second_support_at_once_too() -> None:
    world = await build_world()
    proposal_id = await add_proposal(world.table_a)
    who = await load_principal(await open_session(world.users["facilitator_a"], verified=True))
    proposal, table = await services.get_with_table(proposal_id)
    data = {"resident": str(world.users["resident_a"]), **AGREED}
    results = await asyncio.gather(
        *(discussion.support_on_behalf(who, table, proposal, data) for _ in range(4)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, UserError)]
    assert len(refused) == 3
    assert results.count(None) == 1
    assert await supports_of(proposal_id) == 1


async def test_the_resident_or_the_facilitator_withdraws_it(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    resident = world.users["resident_a"]
    form = {"resident": str(resident), **AGREED}
    await as_facilitator(client, world)
    assert (await post_form(client, support_url(proposal), form)).status_code == 303

    # The resident withdraws it themself, as any support of theirs.
    await sign_in(client, resident)
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert t("Withdraw my support") in page.text
    mine = await post_form(client, f"/proposals/{proposal}/support", {"action": "withdraw"})
    assert mine.status_code == 303
    assert await supports_of(proposal) == 0

    # Or the facilitator, at their request: consent again.
    await as_facilitator(client, world)
    assert (await post_form(client, support_url(proposal), form)).status_code == 303
    withdraw = {"resident": str(resident), "action": "withdraw"}
    unasked = await post_form(client, f"{support_url(proposal)}?lang=fr", withdraw)
    assert unasked.status_code == 400
    assert t("Confirm that the resident asked you to record or withdraw their support.") in (
        unasked.text
    )
    assert await supports_of(proposal) == 1
    asked = await post_form(client, support_url(proposal), {**withdraw, **AGREED})
    assert asked.status_code == 303
    assert await supports_of(proposal) == 0
    withdrawn = await audit_entries("support.withdrawn_on_behalf")
    assert [(e["subject"], e["details"]) for e in withdrawn] == [
        (f"proposal:{proposal}", {"resident": resident})
    ]

    # A support the resident gave themself is theirs alone to withdraw.
    await sign_in(client, resident)
    assert (await post_form(client, f"/proposals/{proposal}/support", {})).status_code == 303
    await as_facilitator(client, world)
    theirs = await post_form(client, f"{support_url(proposal)}?lang=fr", {**withdraw, **AGREED})
    assert theirs.status_code == 409
    assert t("This resident has no support recorded for them on this proposal.") in theirs.text
    assert await supports_of(proposal) == 1
    assert len(await audit_entries("support.withdrawn_on_behalf")) == 1


async def test_without_the_resident_s_consent_nothing_is_recorded(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await as_facilitator(client, world)
    resident = str(world.users["resident_a"])
    support = await post_form(client, f"{support_url(proposal)}?lang=ar", {"resident": resident})
    assert support.status_code == 400
    assert (
        t("Confirm that the resident asked you to record or withdraw their support.", "ar")
        in support.text
    )
    assert 'aria-describedby="f-behalf_support.consent-error"' in support.text
    said = "Il faut réparer vite."
    comment = await post_form(
        client, f"{comment_url(proposal)}?lang=fr", {"resident": resident, "body": said}
    )
    assert comment.status_code == 400
    assert (
        t("Confirm that the resident agrees to this comment being published for them.")
        in comment.text
    )
    # The text typed is given back, and the resident still chosen, to tick the box and send.
    assert f">{said}</textarea>" in comment.text
    assert f'<option value="{resident}" dir="auto" selected>' in comment.text
    # Any other value than the box's is no consent.
    no = await post_form(client, support_url(proposal), {"resident": resident, "consent": "no"})
    assert no.status_code == 400
    assert await Support.count() == 0
    assert await Comment.count() == 0
    assert await AuditEntry.count() == 0
    assert await supports_of(proposal) == 0


async def test_only_a_resident_of_the_table_is_acted_for(client: AsyncClient) -> None:
    """Someone of another table, a facilitator (who speaks in their own name), an unknown or
    absurd id, nobody chosen: refused with the field's message, nothing written."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    other = await add_user("facilitator-a2", "Facilitator-A2")
    await seat(other, world.table_a, FACILITATOR)
    await as_facilitator(client, world)
    refusal = t("Choose one of this table's residents.")
    for person in (
        world.users["resident_b"],
        world.users["facilitator_a"],
        other,
        world.users["coordinator_a"],
        999_999,
    ):
        for url in (support_url(proposal), comment_url(proposal)):
            sent = {"resident": str(person), "body": "Je suis pour.", **AGREED}
            response = await post_form(client, f"{url}?lang=fr", sent)
            assert response.status_code == 400, (person, url)
            assert refusal in response.text, (person, url)
    for absurd in ("", "abc", "-1", "٣", "99999999999999999999"):
        response = await post_form(client, support_url(proposal), {"resident": absurd, **AGREED})
        assert response.status_code == 400, absurd
    withdraw = {"resident": str(world.users["resident_b"]), "action": "withdraw", **AGREED}
    assert (await post_form(client, support_url(proposal), withdraw)).status_code == 400
    assert await Support.count() == 0
    assert await Comment.count() == 0
    assert await AuditEntry.count() == 0


async def test_only_those_who_run_the_table_act_for_a_resident(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    form = {"resident": str(world.users["resident_a"]), "body": "Je suis pour.", **AGREED}
    for who, status in (
        ("resident_a", 403),  # a plain resident, even for themself
        ("facilitator_b", 403),  # a facilitator of another table
        ("coordinator_b", 403),
        ("outsider", 403),
    ):
        await sign_in(client, world.users[who])
        for url in (support_url(proposal), comment_url(proposal)):
            response = await post_form(client, url, form)
            assert response.status_code == status, (who, url)
        page = await client.get(f"/proposals/{proposal}")
        assert support_url(proposal) not in page.text, who
        assert comment_url(proposal) not in page.text, who
    # Unverified, the facilitator is asked for their code first.
    await sign_in(client, world.users["facilitator_a"], verified=False)
    response = await post_form(client, support_url(proposal), form)
    assert response.status_code == 401 or response.headers["location"].startswith("/login")
    assert (
        await post_form(client, f"/proposals/{proposal}/on-behalf/nonsense", form)
    ).status_code == 404
    assert await Support.count() == 0
    assert await Comment.count() == 0
    # The coordinator of the organisation may, as for proposals.
    await sign_in(client, world.users["coordinator_a"])
    assert (await post_form(client, support_url(proposal), form)).status_code == 303
    assert await supports_of(proposal) == 1


async def test_a_card_only_resident_is_acted_for_like_any_other(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    manager = await load_principal(await open_session(world.users["facilitator_a"], verified=True))
    card_resident, _ = await register_card_resident(manager, world.table_a, name="Fatou")
    await as_facilitator(client, world)
    form = {"resident": str(card_resident), "body": "Fatou dit : oui !", **AGREED}
    page = await client.get(f"/proposals/{proposal}")
    assert f'<option value="{card_resident}" dir="auto">Fatou</option>' in page.text
    assert (await post_form(client, support_url(proposal), form)).status_code == 303
    assert (await post_form(client, comment_url(proposal), form)).status_code == 303
    assert (await Support.select(Support.user).first())["user"] == card_resident
    assert (await Comment.select(Comment.author).first())["author"] == card_resident
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert "Parole de <strong><bdi>Fatou</bdi></strong>, recueillie par" in page.text


async def test_hidden_or_merged_proposals_take_no_more(client: AsyncClient) -> None:
    world = await build_world()
    kept = await add_proposal(world.table_a, "Les ascenseurs")
    duplicate = await add_proposal(world.table_a, "Les ascenseurs, encore")
    await as_facilitator(client, world)
    form = {"resident": str(world.users["resident_a"]), **AGREED}
    assert (await post_form(client, support_url(duplicate), form)).status_code == 303
    merged = await post_form(client, f"/proposals/{duplicate}/merge", {"into": str(kept)})
    assert merged.status_code == 303
    # The support went over still marked as recorded for the resident.
    moved = await Support.select().where(Support.proposal == kept).first()
    assert moved["user"] == world.users["resident_a"]
    assert moved["recorded_by"] == world.users["facilitator_a"]
    assert moved["consent_recorded_at"] is not None
    assert await supports_of(kept) == 1
    late = await post_form(client, comment_url(duplicate), {**form, "body": "Trop tard ?"})
    assert late.status_code == 409
    assert t("This proposal is no longer open to discussion.") in late.text
    assert await Comment.count() == 0


async def test_the_resident_s_export_holds_what_was_recorded_for_them(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Des bancs")
    resident = world.users["resident_a"]
    await as_facilitator(client, world)
    form = {"resident": str(resident), "body": "Pour les anciens du quartier.", **AGREED}
    assert (await post_form(client, support_url(proposal), form)).status_code == 303
    assert (await post_form(client, comment_url(proposal), form)).status_code == 303

    await sign_in(client, resident)
    data = (await client.get("/account/data.json")).json()
    [support] = data["supports"]
    assert support["proposal"] == proposal
    assert support["title"] == "Des bancs"
    assert support["recorded_by"] == "Facilitator-A"
    assert support["consent_recorded_at"]
    [comment] = data["comments"]
    assert comment["body"] == "Pour les anciens du quartier."
    assert comment["recorded_by"] == "Facilitator-A"
    assert comment["consent_recorded_at"]
    # The facilitator's own export holds their acts, not the resident's contributions.
    await as_facilitator(client, world)
    theirs = (await client.get("/account/data.json")).json()
    assert theirs["supports"] == []
    assert theirs["comments"] == []


async def test_the_facilitator_s_erasure_keeps_what_they_recorded(client: AsyncClient) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    resident = world.users["resident_a"]
    await as_facilitator(client, world)
    said = "Ma voisine demande un banc."
    form = {"resident": str(resident), "body": said, **AGREED}
    assert (await post_form(client, support_url(proposal), form)).status_code == 303
    assert (await post_form(client, comment_url(proposal), form)).status_code == 303
    erased = await post_form(
        client, "/account/erase", {"password": PASSWORD, "confirm": "yes"}, follow_redirects=False
    )
    assert erased.status_code == 303

    support = await Support.select().first()
    assert (support["user"], support["recorded_by"]) == (resident, None)
    assert support["consent_recorded_at"] is not None  # still known to be recorded for them
    comment = await Comment.select().first()
    assert (comment["author"], comment["recorded_by"], comment["body"]) == (resident, None, said)
    assert await supports_of(proposal) == 1
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert "Parole de <strong><bdi>Resident-A</bdi></strong>, recueillie par <bdi>" in page.text
    assert f"recueillie par <bdi>{t('a facilitator')}</bdi>" in page.text
    assert "Facilitator-A" not in page.text

    # What was recorded for the resident is the resident's to take back.
    await sign_in(client, resident)
    own = await post_form(client, f"/proposals/{proposal}/support", {"action": "withdraw"})
    assert own.status_code == 303
    assert await supports_of(proposal) == 0
