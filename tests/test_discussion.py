"""Discussing proposals over HTTP, on the real database: supports, comments, reports,
moderation, the status workflow with its history, merging duplicates."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import httpx

from accounts.services import open_session
from audit.models import AuditEntry
from proposals.models import Comment, Media, Proposal, Report, StatusChange, Support
from voix.web import SESSION_COOKIE

from .conftest import make_client
from .factories import (
    add_proposal,
    add_user,
    build_world,
    csrf_token,
    post_form,
    seat,
    sign_in,
    sign_out,
    t,
)


async def status_of(proposal_id: int) -> str:
    row = await Proposal.select(Proposal.status).where(Proposal.id == proposal_id).first()
    return row["status"]


async def test_a_resident_supports_once_and_can_withdraw(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["resident_a"])
    assert (await post_form(client, f"/proposals/{proposal}/support", {})).status_code == 303
    second = await post_form(client, f"/proposals/{proposal}/support?lang=ar", {})
    assert second.status_code == 409
    assert (
        t("You already support this proposal. Each person supports it once.", "ar") in second.text
    )
    assert await Support.count() == 1
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert "1 soutien" in page.text
    withdrawn = await post_form(client, f"/proposals/{proposal}/support", {"action": "withdraw"})
    assert withdrawn.status_code == 303
    assert await Support.count() == 0
    again = await post_form(client, f"/proposals/{proposal}/support", {"action": "withdraw"})
    assert again.status_code == 409
    # Someone from another table, or nobody, cannot support it.
    await sign_in(client, world.users["resident_b"])
    assert (await post_form(client, f"/proposals/{proposal}/support", {})).status_code == 403
    sign_out(client)
    assert (await post_form(client, f"/proposals/{proposal}/support", {})).status_code == 401
    assert await Support.count() == 0


async def test_comments_take_one_level_of_replies_and_stay_inert(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["resident_a"])
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    first = await post_form(client, f"/proposals/{proposal}/comments", {"body": payload})
    assert first.status_code == 303
    comment_id = (await Comment.select(Comment.id).first())["id"]
    reply = await post_form(
        client,
        f"/proposals/{proposal}/comments",
        {"body": "D'accord avec vous.", "parent": str(comment_id)},
    )
    assert reply.status_code == 303
    reply_id = (await Comment.select(Comment.id).where(Comment.parent == comment_id).first())["id"]
    deeper = await post_form(
        client, f"/proposals/{proposal}/comments", {"body": "Et moi ?", "parent": str(reply_id)}
    )
    assert deeper.status_code == 400
    assert t("Replies go one level deep: reply to the first comment instead.") in deeper.text
    elsewhere = await add_proposal(world.table_a, "Une autre idée")
    stray = await post_form(
        client, f"/proposals/{elsewhere}/comments", {"body": "Réponse", "parent": str(comment_id)}
    )
    assert stray.status_code == 400
    empty = await post_form(client, f"/proposals/{proposal}/comments", {"body": " "})
    assert empty.status_code == 400
    assert t("This field is required.") in empty.text
    assert await Comment.count() == 2

    sign_out(client)
    page = await client.get(f"/proposals/{proposal}")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "<img src=x" not in page.text
    assert "D&#39;accord avec vous." in page.text
    await sign_in(client, world.users["resident_b"])
    outsider = await post_form(client, f"/proposals/{proposal}/comments", {"body": "Bonjour"})
    assert outsider.status_code == 403


async def test_reports_once_then_hiding_with_a_reason_audited(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Texte injurieux")
    kept = await add_proposal(world.table_a, "Une vraie idée")
    await sign_in(client, world.users["resident_b"])  # any signed-in person may report
    assert (
        await post_form(client, f"/proposals/{proposal}/report", {"reason": "insultes"})
    ).status_code == 303
    twice = await post_form(client, f"/proposals/{proposal}/report", {"reason": "encore"})
    assert twice.status_code == 409
    assert await Report.count() == 1

    await sign_in(client, world.users["resident_a"])
    assert (
        await post_form(client, f"/proposals/{proposal}/moderation", {"reason": "x"})
    ).status_code == 403

    await sign_in(client, world.users["facilitator_a"])
    page = await client.get(f"/proposals/{proposal}")
    assert "insultes" in page.text  # the facilitator sees the report
    no_reason = await post_form(client, f"/proposals/{proposal}/moderation", {"reason": ""})
    assert no_reason.status_code == 400
    hidden = await post_form(
        client, f"/proposals/{proposal}/moderation", {"reason": "Propos injurieux"}
    )
    assert hidden.status_code == 303
    entry = await AuditEntry.select().where(AuditEntry.action == "moderation.hidden").first()
    assert entry["subject"] == f"proposal:{proposal}"
    details = entry["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert details["reason"] == "Propos injurieux"

    sign_out(client)
    listing = await client.get("/tables/flamants-iris")
    assert "Texte injurieux" not in listing.text
    assert "Une vraie idée" in listing.text
    api = await client.get("/api/v1/tables/flamants-iris/proposals")
    assert [p["id"] for p in api.json()["items"]] == [kept]
    detail = await client.get(f"/proposals/{proposal}")
    shown = re.sub(r"<[^>]+>", "", detail.text)  # the reason sits in a <bdi> isolate
    assert t("Hidden by the facilitators: %(reason)s", reason="Propos injurieux") in shown
    assert "Les ascenseurs tombent" not in detail.text  # the body is not shown


async def test_the_workflow_allows_only_its_steps_and_keeps_who_when_why(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["resident_a"])
    refused = await post_form(client, f"/proposals/{proposal}/status", {"status": "discussion"})
    assert refused.status_code == 403

    await sign_in(client, world.users["facilitator_a"])
    skip = await post_form(client, f"/proposals/{proposal}/status?lang=en", {"status": "done"})
    assert skip.status_code == 400
    assert "A proposal cannot go from “Submitted” to “Carried out”." in skip.text
    assert await status_of(proposal) == "submitted"
    steps = [
        ("discussion", "Discutée en réunion du 3 décembre"),
        ("adopted", "Consensus de la table"),
        ("transmitted", "Envoyée au bailleur"),
        ("answered", "Courrier du bailleur reçu"),
        ("done", "Ascenseurs réparés"),
    ]
    for target, reason in steps:
        if target == "adopted":  # a decision, not a step: its own form, with its reason
            url, data = f"/proposals/{proposal}/decision", {"decision": target, "reason": reason}
        else:
            url, data = f"/proposals/{proposal}/status", {"status": target, "reason": reason}
        response = await post_form(client, url, data)
        assert response.status_code == 303, target
    assert await status_of(proposal) == "done"
    backwards = await post_form(client, f"/proposals/{proposal}/status", {"status": "adopted"})
    assert backwards.status_code == 400
    history = await StatusChange.select(
        StatusChange.from_status, StatusChange.to_status, StatusChange.reason, StatusChange.actor
    ).order_by(StatusChange.id)
    assert [(h["to_status"], h["reason"]) for h in history] == steps
    assert {h["actor"] for h in history} == {world.users["facilitator_a"]}
    assert history[0]["from_status"] == "submitted"
    page = await client.get(f"/proposals/{proposal}?lang=fr")
    assert "Ascenseurs réparés" in page.text
    assert t("Carried out") in page.text


async def test_votes_write_the_history_too(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["facilitator_a"])
    await post_form(client, f"/proposals/{proposal}/status", {"status": "discussion"})
    opened = await post_form(client, f"/proposals/{proposal}/votes", {"question": "On adopte ?"})
    assert opened.status_code == 303
    vote_id = opened.headers["location"].rsplit("/", 1)[1]
    await post_form(client, f"/votes/{vote_id}/close", {})  # nobody voted: not adopted
    overruled = {"decision": "adopted", "reason": "Consensus de la salle"}
    await post_form(client, f"/proposals/{proposal}/decision", overruled)
    changes = await StatusChange.select(StatusChange.to_status, StatusChange.reason).order_by(
        StatusChange.id
    )
    assert [c["to_status"] for c in changes] == ["discussion", "voting", "rejected", "adopted"]
    assert changes[-1]["reason"] == "Consensus de la salle"


async def test_merging_carries_supports_and_comments_to_the_proposal_kept(client) -> None:
    world = await build_world()
    kept = await add_proposal(world.table_a, "Réparer les ascenseurs")
    duplicate = await add_proposal(world.table_a, "Les ascenseurs sont en panne")
    theirs = await add_proposal(world.table_b, "Autre table")
    resident_c = await add_user("resident-c")
    await seat(resident_c, world.table_a)
    for user in (world.users["resident_a"], resident_c):
        await sign_in(client, user)
        await post_form(client, f"/proposals/{duplicate}/support", {})
    await post_form(client, f"/proposals/{kept}/support", {})  # resident C supports both
    await post_form(client, f"/proposals/{duplicate}/comments", {"body": "Tour G aussi"})

    await sign_in(client, world.users["facilitator_a"])
    for target, message in (
        (duplicate, "A proposal cannot be merged into itself."),
        (theirs, "Choose a proposal of the same table."),
    ):
        refused = await post_form(client, f"/proposals/{duplicate}/merge", {"into": str(target)})
        assert refused.status_code == 400
        assert t(message) in refused.text
    merged = await post_form(client, f"/proposals/{duplicate}/merge", {"into": str(kept)})
    assert merged.status_code == 303

    row = await Proposal.select().where(Proposal.id == duplicate).first()
    assert (row["status"], row["merged_into"]) == ("merged", kept)
    supporters = await Support.select(Support.user).where(Support.proposal == kept)
    assert sorted(s["user"] for s in supporters) == sorted([world.users["resident_a"], resident_c])
    assert await Support.count().where(Support.proposal == duplicate) == 0
    assert await Comment.count().where(Comment.proposal == kept) == 1
    again = await post_form(client, f"/proposals/{duplicate}/merge", {"into": str(kept)})
    assert again.status_code == 409

    sign_out(client)
    listing = await client.get("/tables/flamants-iris")
    assert "Les ascenseurs sont en panne" not in listing.text
    page = await client.get(f"/proposals/{duplicate}")
    assert f'href="/proposals/{kept}"' in page.text
    kept_page = await client.get(f"/proposals/{kept}")
    assert "2 soutiens" in kept_page.text
    assert "Tour G aussi" in kept_page.text


async def test_a_hidden_proposal_shows_only_the_reason_to_all_but_its_managers(client) -> None:
    world = await build_world()
    proposal = await add_proposal(
        world.table_a, "Titre injurieux", body="Un texte injurieux et long."
    )
    await Media.insert(
        Media(
            proposal=proposal,
            kind="photo",
            token="photo-of-the-insult-0123",
            content_type="image/jpeg",
            data=b"not really a jpeg",
            size=17,
            created_at=datetime.now(UTC),
        )
    )
    await sign_in(client, world.users["resident_a"])
    await post_form(client, f"/proposals/{proposal}/comments", {"body": "Un commentaire visé"})
    await sign_in(client, world.users["facilitator_a"])
    hidden = await post_form(
        client, f"/proposals/{proposal}/moderation", {"reason": "Propos injurieux"}
    )
    assert hidden.status_code == 303
    notice = t("Hidden by the facilitators: %(reason)s", reason="Propos injurieux")
    secrets = (
        "Titre injurieux",
        "Un texte injurieux",
        "Un commentaire visé",
        "photo-of-the-insult",
    )

    for role in (None, "resident_a", "resident_b", "facilitator_b", "coordinator_b"):
        if role is None:
            sign_out(client)
        else:
            await sign_in(client, world.users[role])
        page = await client.get(f"/proposals/{proposal}")
        assert page.status_code == 200, role
        assert notice in re.sub(r"<[^>]+>", "", page.text), role  # the reason is in a <bdi>
        for secret in secrets:
            assert secret not in page.text, (role, secret)

    for role in ("facilitator_a", "coordinator_a", "admin"):
        await sign_in(client, world.users[role])
        page = await client.get(f"/proposals/{proposal}")
        assert notice in re.sub(r"<[^>]+>", "", page.text), role  # the reason is in a <bdi>
        for secret in secrets:
            assert secret in page.text, (role, secret)


async def test_opposite_merges_at_once_leave_one_kept_and_no_cycle(client, app) -> None:
    """A into B and B into A at the same moment: one merge wins, the other is refused."""
    world = await build_world()
    session = await open_session(world.users["facilitator_a"], verified=True)
    token = await csrf_token(client)
    pairs = [
        (
            await add_proposal(world.table_a, f"Bancs {n}"),
            await add_proposal(world.table_a, f"Banc {n}"),
        )
        for n in range(5)
    ]

    async def merge(duplicate: int, kept: int) -> httpx.Response:
        async with make_client(app) as browser:  # each click from its own browser tab
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await browser.post(
                f"/proposals/{duplicate}/merge", data={"into": str(kept), "_csrf_token": token}
            )

    responses = await asyncio.gather(
        *(merge(a, b) for a, b in pairs), *(merge(b, a) for a, b in pairs)
    )
    refusal = t(
        "The proposal chosen has itself been merged or hidden in the meantime. "
        "Reload the page and choose another one."
    )
    listing = await client.get("/tables/flamants-iris")
    for n, (a, b) in enumerate(pairs):
        forward, backward = responses[n], responses[n + len(pairs)]
        assert sorted([forward.status_code, backward.status_code]) == [303, 409], (a, b)
        refused = forward if forward.status_code == 409 else backward
        assert refusal in refused.text
        rows = {
            row["id"]: row
            for row in await Proposal.select(
                Proposal.id, Proposal.status, Proposal.merged_into
            ).where(Proposal.id.is_in([a, b]))
        }
        merged = [row for row in rows.values() if row["status"] == "merged"]
        assert len(merged) == 1, rows  # no cycle: exactly one of the two is merged
        kept = (set(rows) - {merged[0]["id"]}).pop()
        assert merged[0]["merged_into"] == kept
        assert rows[kept]["merged_into"] is None
        assert f'href="/proposals/{kept}"' in listing.text  # the kept one is listed
        assert f'href="/proposals/{merged[0]["id"]}"' not in listing.text
        page = await client.get(f"/proposals/{merged[0]['id']}")
        assert f'href="/proposals/{kept}"' in page.text  # the merged one leads to it


async def test_no_merging_into_a_merged_proposal_and_chains_point_to_the_kept_one(client) -> None:
    world = await build_world()
    first = await add_proposal(world.table_a, "Des bancs place Bougainville")
    second = await add_proposal(world.table_a, "Bancs à Bougainville")
    third = await add_proposal(world.table_a, "Des bancs, encore")
    await sign_in(client, world.users["facilitator_a"])
    assert (
        await post_form(client, f"/proposals/{first}/merge", {"into": str(second)})
    ).status_code == 303
    refused = await post_form(client, f"/proposals/{third}/merge", {"into": str(first)})
    assert refused.status_code == 409
    assert (
        t(
            "The proposal chosen has itself been merged or hidden in the meantime. "
            "Reload the page and choose another one."
        )
        in refused.text
    )
    assert await status_of(third) == "submitted"
    # The kept one merged in turn: the first duplicate now points to the last proposal kept.
    assert (
        await post_form(client, f"/proposals/{second}/merge", {"into": str(third)})
    ).status_code == 303
    rows = await Proposal.select(Proposal.id, Proposal.merged_into).order_by(Proposal.id)
    assert [row["merged_into"] for row in rows] == [third, third, None]
