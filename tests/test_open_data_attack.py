"""Attacking the open data (issue 17): the exports, their downloads and the JSON API, as an
outsider and as each role. Each test states what must hold; a failing one is a problem found."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from httpx import AsyncClient

from accounts.models import User
from exports import open_data
from meetings.models import Attendance, Meeting
from proposals.models import (
    MERGED,
    Comment,
    Proposal,
    StatusChange,
    Support,
    Translation,
)
from tests.conftest import DATABASE_KIND
from tests.factories import (
    add_institution,
    add_proposal,
    add_user,
    build_world,
    publish_brief,
    seat,
    sign_in,
)
from tests.servers import replica, serving
from voix.i18n import catalog
from votes.models import CLOSED, OPEN, Vote, VoteOption

API = "/api/v1/tables/flamants-iris/proposals"
BASE = "http://testserver.local"  # VOIX_BASE_URL in tests/conftest.py
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECRET = "Zorglub"  # in every personal or hidden field; never in anything published


def gettext(msgid: str, lang: str = "fr", **params: Any) -> str:
    text = catalog(lang).gettext(msgid)
    return text % params if params else text


async def export(dataset: str, fmt: str, scope: open_data.Scope) -> bytes:
    return b"".join([chunk async for chunk in open_data.stream(dataset, fmt, scope)])


def read_csv(data: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    return list(
        csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter)
    )


def formats_of(dataset: str) -> list[str]:
    return [f for f in open_data.FORMATS if f != "geojson" or dataset == "proposals"]


async def walk(client: AsyncClient, url: str) -> list[int]:
    ids: list[int] = []
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        url = page["next"] and page["next"].removeprefix(BASE)
    return ids


# Personal data and hidden content, everywhere


async def _secret_world() -> dict[str, Any]:
    """A table whose every personal or hidden field holds SECRET, and what is public beside it."""
    world = await build_world()
    table = world.table_a
    resident = await add_user("zorglub@example.org", f"Résidente {SECRET}")
    await User.update(
        {User.email: f"{SECRET.lower()}@example.org", User.phone: "+33699887766"}
    ).where(User.id == resident)
    await seat(resident, table)
    facilitator = world.users["facilitator_a"]
    await User.update({User.display_name: f"Animatrice {SECRET}"}).where(User.id == facilitator)
    kept = await add_proposal(
        table,
        "Des bancs à l'ombre",
        author=resident,
        recorded_by=facilitator,
        consent_recorded_at=NOW,
        latitude=43.331,
        longitude=5.409,
    )
    hidden = await add_proposal(
        table,
        f"Caché {SECRET}",
        body=f"Texte {SECRET}",
        hidden_at=NOW,
        hidden_reason=f"Raison {SECRET}",
        latitude=43.332,
        longitude=5.41,
    )
    merged = await add_proposal(
        table, f"Doublon {SECRET}", status=MERGED, merged_into=kept, latitude=43.3, longitude=5.4
    )
    for proposal in (hidden, merged):
        await Translation.insert(
            Translation(
                proposal=proposal,
                language="ar",
                title=f"مخفي {SECRET}",
                body=f"نص {SECRET}",
                updated_at=NOW,
            )
        )
        await Comment.insert(Comment(proposal=proposal, body=f"Sur le caché {SECRET}"))
    await StatusChange.insert(
        StatusChange(
            proposal=kept,
            from_status="submitted",
            to_status="discussion",
            at=NOW,
            actor=facilitator,
            reason=f"Motif {SECRET}",
        )
    )
    await Comment.insert(
        Comment(proposal=kept, author=resident, body="Bonne idée", created_at=NOW),
        Comment(
            proposal=kept,
            author=resident,
            body=f"Injure {SECRET}",
            created_at=NOW,
            hidden_at=NOW,
            hidden_reason=f"Raison {SECRET}",
        ),
    )
    await Support.insert(Support(proposal=kept, user=resident, created_at=NOW))
    await Proposal.update({Proposal.supports: 1}).where(Proposal.id == kept)
    # A vote over the kept, the hidden and the merged proposals, closed; and an open one.
    closed = await Vote.insert(
        Vote(
            table=table["id"],
            question="Quels aménagements ?",
            method="approval",
            status=CLOSED,
            opened_by=facilitator,
            opened_at=NOW - timedelta(days=2),
            closed_at=NOW - timedelta(days=1),
        )
    ).returning(Vote.id)
    await VoteOption.insert(
        *[
            VoteOption(
                vote=closed[0]["id"],
                position=n,
                proposal=proposal,
                label=label,
                tally="[3]",
                rank=n + 1,
                adopted=n == 0,
            )
            for n, (proposal, label) in enumerate(
                ((kept, "Des bancs à l'ombre"), (hidden, f"Caché {SECRET}"))
            )
        ]
    )
    opened = await Vote.insert(
        Vote(
            table=table["id"],
            proposal=kept,
            question="Des bancs ?",
            status=OPEN,
            opened_by=facilitator,
            opened_at=NOW,
        )
    ).returning(Vote.id)
    await VoteOption.insert(
        VoteOption(vote=opened[0]["id"], position=0, proposal=kept, label="Des bancs ?")
    )
    meeting = await Meeting.insert(
        Meeting(
            table=table["id"],
            title="Réunion de la table",
            starts_at=NOW,
            ends_at=NOW + timedelta(hours=2),
            place="Centre social",
            address="1 rue des Flamants",
            created_by=facilitator,
        )
    ).returning(Meeting.id)
    await Attendance.insert(
        Attendance(
            meeting=meeting[0]["id"],
            user=resident,
            name=f"Résidente {SECRET}",
            person=f"name:{SECRET.lower()}",
            method="walk_in",
            checked_in_at=NOW,
            recorded_by=facilitator,
        )
    )
    await Proposal.update({Proposal.status: "adopted"}).where(Proposal.id == kept)
    slug = await publish_brief(table, facilitator, proposals=[kept])
    return {
        "world": world,
        "table": table,
        "kept": kept,
        "hidden": hidden,
        "merged": merged,
        "closed_vote": closed[0]["id"],
        "open_vote": opened[0]["id"],
        "meeting": meeting[0]["id"],
        "brief": slug,
        "resident": resident,
    }


async def test_no_export_of_any_scope_or_format_holds_a_secret() -> None:
    made = await _secret_world()
    table = made["table"]
    scopes = (
        open_data.Scope(table_id=table["id"]),
        open_data.Scope(organisation_id=table["organisation"]),
        open_data.Scope(),
    )
    for dataset in open_data.DATASETS:
        for fmt in formats_of(dataset):
            for scope in scopes:
                text = (await export(dataset, fmt, scope)).decode("utf-8")
                assert SECRET.lower() not in text.lower(), (dataset, fmt, scope)
                assert "33699887766" not in text
    proposals = [
        json.loads(line)
        for line in (await export("proposals", "jsonl", open_data.Scope())).splitlines()
    ]
    assert [row["id"] for row in proposals] == [made["kept"]]
    row = proposals[0]
    assert row["comments_count"] == 1
    assert row["supports"] == 1
    assert row["recorded_on_behalf"] is True
    votes = {
        row["id"]: row
        for row in (
            json.loads(line)
            for line in (await export("votes", "jsonl", open_data.Scope())).splitlines()
        )
    }
    withdrawn = votes[made["closed_vote"]]["options"][1]
    assert withdrawn["withdrawn"] is True
    assert withdrawn["label"] == ""
    assert votes[made["open_vote"]]["results"] is None


async def test_no_api_answer_holds_a_secret_whoever_asks(client: AsyncClient) -> None:
    made = await _secret_world()
    world = made["world"]
    urls = [
        "/api/v1/tables",
        API,
        f"{API}?q={SECRET}",
        f"{API}?sort=supports",
        f"/api/v1/votes/{made['closed_vote']}",
        f"/api/v1/votes/{made['open_vote']}",
        "/api/v1/tables/flamants-iris/follow-up",
        "/api/v1/organisations/avec-nous/follow-up",
    ]
    for who in (None, "resident_a", "facilitator_a", "coordinator_a", "admin", "outsider"):
        client.cookies.clear()
        if who:
            await sign_in(client, world.users[who])
        for url in urls:
            response = await client.get(url)
            assert response.status_code == 200, (who, url, response.text)
            assert SECRET.lower() not in response.text.lower(), (who, url)
            assert "33699887766" not in response.text
    client.cookies.clear()
    items = (await client.get(API)).json()["items"]
    assert [item["id"] for item in items] == [made["kept"]]
    assert items[0]["comments_count"] == 1
    opened = (await client.get(f"/api/v1/votes/{made['open_vote']}")).json()
    assert opened["counts"] is None
    assert all(option["tally"] is None for option in opened["options"])


async def test_no_download_holds_a_secret(client: AsyncClient) -> None:
    made = await _secret_world()
    prefixes = ("/data", "/tables/flamants-iris/data", "/organisations/avec-nous/data")
    await sign_in(client, made["world"].users["facilitator_a"])  # a manager gets the same
    for prefix in prefixes:
        for dataset in open_data.DATASETS:
            for fmt in formats_of(dataset):
                response = await client.get(f"{prefix}/{dataset}.{fmt}")
                assert response.status_code == 200, (prefix, dataset, fmt)
                assert SECRET.lower() not in response.text.lower(), (prefix, dataset, fmt)


async def test_an_erased_resident_leaves_no_name_in_exports(client: AsyncClient) -> None:
    """Erasure (GDPR): the proposal stays, signed by nobody, in the exports as before."""
    from accounts import rights
    from voix.permissions import Principal

    world = await build_world()
    user = await add_user("erase-me", f"Effacée {SECRET}")
    await seat(user, world.table_a)
    proposal = await add_proposal(world.table_a, "Un parc pour les enfants", author=user)
    await Comment.insert(Comment(proposal=proposal, author=user, body="Je soutiens"))
    await rights.erase(Principal(user_id=user), None, True)
    data = (await export("proposals", "jsonl", open_data.Scope())).decode()
    assert SECRET not in data
    assert json.loads(data)["id"] == proposal
    assert json.loads(data)["comments_count"] == 1


# The rows equal what the pages show


async def test_a_reply_under_a_hidden_comment_is_counted_as_the_page_shows_it(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un éclairage dans l'allée")
    top = await Comment.insert(
        Comment(proposal=proposal, body="Premier", created_at=NOW, hidden_at=NOW)
    ).returning(Comment.id)
    await Comment.insert(
        Comment(
            proposal=proposal, parent=top[0]["id"], body="Réponse visible ABCDEF", created_at=NOW
        )
    )
    page = await client.get(f"/proposals/{proposal}")
    assert page.status_code == 200
    shown = page.text.count("Réponse visible ABCDEF")
    (row,) = [r async for r in open_data.rows("proposals", open_data.Scope())]
    api = (await client.get(API)).json()["items"][0]
    assert row["comments_count"] == api["comments_count"] == shown


async def test_a_vote_past_its_closing_time_counts_as_closed_in_the_proposals_export(
    client: AsyncClient,
) -> None:
    """A vote past its closing time is closed by the first request that reads it (its page,
    the votes export, the API): the proposals export, read first, must say the same as the
    proposal's page says at that moment (its last closed vote)."""
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un abri de bus", status="voting")
    vote = await Vote.insert(
        Vote(
            table=world.table_a["id"],
            proposal=proposal,
            question="Un abri de bus ?",
            status=OPEN,
            opened_at=NOW - timedelta(days=3),
            closes_at=datetime.now(UTC) - timedelta(hours=1),
        )
    ).returning(Vote.id)
    await VoteOption.insert(
        VoteOption(vote=vote[0]["id"], position=0, proposal=proposal, label="Un abri de bus ?")
    )
    (row,) = [r async for r in open_data.rows("proposals", open_data.Scope())]
    api = (await client.get(API)).json()["items"][0]
    page = await client.get(f"/proposals/{proposal}")
    assert page.status_code == 200
    status = await Vote.select(Vote.status).where(Vote.id == vote[0]["id"]).first()
    assert status is not None
    assert status["status"] == CLOSED  # the page closed it
    current = await Proposal.select(Proposal.status).where(Proposal.id == proposal).first()
    assert current is not None
    assert row["last_vote"] == vote[0]["id"], "the export shows no closed vote on it"
    assert row["status"] == current["status"], "the export shows the status before closing"
    assert api["status"] == current["status"], "the API shows the status before closing"


# Encoding: CSV injection, cells, text


CSV_CELLS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    '"=1+1"',
    "'=1+1",
    "=1+1\n=2+2",
    "Texte\n=1+1",
    'ligne; "guillemets", virgule',
    "مرحبا « école » ﷲ",
    "x" * 20_000,
]


async def test_cells_survive_a_round_trip_and_never_start_a_formula() -> None:
    world = await build_world()
    ids = {await add_proposal(world.table_a, f"Titre {n}", body=value): value for n, value in
           enumerate(CSV_CELLS)}  # fmt: skip
    scope = open_data.Scope(table_id=world.table_a["id"])
    for fmt, delimiter in (("csv", ","), ("csv-semicolon", ";")):
        rows = {
            int(row["id"]): row
            for row in read_csv(await export("proposals", fmt, scope), delimiter)
        }
        for proposal, value in ids.items():
            cell = rows[proposal]["body"]
            assert not cell.startswith(open_data._FORMULA_START), (fmt, value)
            guarded = value.startswith(open_data._FORMULA_START)
            assert cell == ("'" + value if guarded else value), (fmt, value)
    lines = (await export("proposals", "jsonl", scope)).decode().split("\n")
    assert lines[-1] == ""
    assert {json.loads(line)["body"] for line in lines[:-1]} == set(CSV_CELLS)


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="PostgreSQL's text holds no NUL")
async def test_a_nul_byte_stored_in_a_title_does_not_break_an_export() -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Avant\x00après")
    for fmt in ("csv", "csv-semicolon"):
        assert b"Avant\x00apr" in await export("proposals", fmt, open_data.Scope())
    jsonl = await export("proposals", "jsonl", open_data.Scope())
    assert json.loads(jsonl)["title"] == "Avant\x00après"


async def test_a_table_with_no_proposals_and_an_unknown_scope_give_headers_only() -> None:
    world = await build_world()
    await add_proposal(world.table_b, "Ailleurs")
    for dataset in open_data.DATASETS:
        for fmt in formats_of(dataset):
            data = await export(dataset, fmt, open_data.Scope(table_id=world.table_a["id"]))
            if fmt.startswith("csv"):
                assert read_csv(data, ";" if fmt == "csv-semicolon" else ",") == []
                assert data.startswith(b"\xef\xbb\xbf")
            elif fmt == "jsonl":
                assert data == b""
            else:
                assert json.loads(data)["features"] == []


# Scopes


async def test_a_table_or_organisation_export_never_holds_anothers_rows(
    client: AsyncClient,
) -> None:
    made = await _secret_world()
    world = made["world"]
    other = world.table_b
    theirs = await add_proposal(other, "Aux Aygalades seulement", status="adopted")
    institution = await add_institution(other, "Mairie des 15/16")
    assert institution
    await publish_brief(other, world.users["facilitator_b"], proposals=[theirs], slug="aygalades")
    for dataset in open_data.DATASETS:
        for scope, own_table, own_org in (
            (open_data.Scope(table_id=made["table"]["id"]), "flamants-iris", "avec-nous"),
            (open_data.Scope(organisation_id=other["organisation"]), "les-aygalades",
             "collectif-des-femmes"),
        ):  # fmt: skip
            rows = [r async for r in open_data.rows(dataset, scope)]
            if dataset in ("proposals", "briefs") or own_table == "flamants-iris":
                assert rows, (dataset, own_table)  # something to check in each
            for row in rows:
                assert row["table"] == own_table, (dataset, row)
                assert row["organisation"] == own_org, (dataset, row)
            if dataset == "briefs":
                for row in rows:
                    for proposal in row["proposals"]:
                        found = await Proposal.select(Proposal.table).where(Proposal.id == proposal)
                        assert found[0]["table"] == (
                            made["table"]["id"] if own_table == "flamants-iris" else other["id"]
                        )


# The API: parameters


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=99999999999999999999999999",
        "limit=",
        "limit=%00",
        "theme=housing%27%20OR%201=1--",
        "status=submitted'--",
        "district=x%27%3B%20DROP%20TABLE%20proposal%3B--",
        "sort=id",
        "sort=supports;DROP",
        "theme=" + "x" * 5000,
        "sort=" + "y" * 5000,
        "cursor=" + "a" * 300,
        "cursor=%F0%9F%98%80",
        "cursor=eyJ9.AAAA",
    ],
)
async def test_a_bad_parameter_is_a_translated_json_400(client: AsyncClient, query: str) -> None:
    await build_world()
    for lang in ("fr", "ar"):
        response = await client.get(f"{API}?{query}", headers={"accept-language": lang})
        assert response.status_code == 400, (query, response.text[:300])
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["status_code"] == 400
        assert len(body["detail"]) < 1000  # a refused value is echoed cut short
        assert response.headers["content-language"] == lang


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        '" OR "',
        "%",
        "_",
        "\\",
        "a & b | !c",
        "ab:*",
        "NEAR(a b)",
        "école",
        "مدرسة",
        "😀",
        "\x00",
        "a\x00b",
        "))((",
        "x" * 100,
    ],
)
async def test_any_search_text_answers_what_the_page_lists(client: AsyncClient, q: str) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "École et مدرسة 😀 100% _ \\ ok")
    await add_proposal(world.table_a, "Rien à voir")
    api = await client.get(API, params={"q": q})
    assert api.status_code == 200, (q, api.text[:300])
    page = await client.get("/tables/flamants-iris", params={"q": q})
    assert page.status_code == 200
    for item in api.json()["items"]:
        assert f'href="/proposals/{item["id"]}"' in page.text, q


async def test_a_cursor_carried_to_another_table_or_filter_shows_only_that_tables_rows(
    client: AsyncClient,
) -> None:
    world = await build_world()
    mine = [await add_proposal(world.table_a, f"Flamants {n}", theme="housing") for n in range(6)]
    theirs = [await add_proposal(world.table_b, f"Aygalades {n}") for n in range(6)]
    first = (await client.get(f"{API}?limit=2")).json()
    cursor = urlsplit(first["next"]).query.split("cursor=")[1]
    elsewhere = await client.get(f"/api/v1/tables/les-aygalades/proposals?limit=50&cursor={cursor}")
    assert elsewhere.status_code in (200, 400)
    if elsewhere.status_code == 200:
        assert {i["id"] for i in elsewhere.json()["items"]} <= set(theirs)
    filtered = await client.get(f"{API}?limit=50&theme=transport&cursor={cursor}")
    assert filtered.status_code in (200, 400)
    if filtered.status_code == 200:
        assert filtered.json()["items"] == []
    assert set(await walk(client, f"{API}?limit=2")) == set(mine)


# The API: caching


async def test_the_etag_holds_while_nothing_changes_and_moves_with_each_change(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un terrain de foot")
    comment = await Comment.insert(
        Comment(proposal=proposal, body="Oui", created_at=NOW)
    ).returning(Comment.id)
    tags = [(await client.get(API)).headers["etag"] for _ in range(3)]
    assert len(set(tags)) == 1, "the same answer, the same tag"
    seen = set(tags)
    changes = [
        Comment.update({Comment.hidden_at: NOW}).where(Comment.id == comment[0]["id"]),
        Proposal.update({Proposal.status: "discussion"}).where(Proposal.id == proposal),
        Proposal.update({Proposal.hidden_at: NOW}).where(Proposal.id == proposal),
    ]
    for change in changes:
        before = seen.copy()
        await change
        response = await client.get(API, headers={"if-none-match": ", ".join(before)})
        assert response.status_code == 200, "a 304 for an answer that changed"
        assert response.headers["etag"] not in before
        seen.add(response.headers["etag"])
    gone = await client.get(API)
    assert gone.json()["items"] == []
    # HEAD: the headers, the tag, no body.
    head = await client.head(API)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == gone.headers["etag"]
    vote_head = await client.head("/api/v1/tables")
    assert vote_head.status_code == 200
    assert vote_head.headers.get("etag")


async def test_the_vote_api_tag_moves_when_a_ballot_is_cast_and_the_vote_closes(
    client: AsyncClient,
) -> None:
    from votes.models import Participation

    world = await build_world()
    proposal = await add_proposal(world.table_a, "Une fontaine")
    vote = await Vote.insert(
        Vote(
            table=world.table_a["id"],
            proposal=proposal,
            question="Une fontaine ?",
            status=OPEN,
            opened_at=NOW,
        )
    ).returning(Vote.id)
    vote_id = vote[0]["id"]
    await VoteOption.insert(
        VoteOption(vote=vote_id, position=0, proposal=proposal, label="Une fontaine ?")
    )
    url = f"/api/v1/votes/{vote_id}"
    first = await client.get(url)
    assert first.json()["ballots"] == 0
    await Participation.insert(
        Participation(
            vote=vote_id,
            user=world.users["resident_a"],
            person=f"user:{world.users['resident_a']}",
            cast_at=NOW,
        )
    )
    second = await client.get(url, headers={"if-none-match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.json()["ballots"] == 1
    assert second.json()["options"][0]["tally"] is None  # open: no tally, only the turnout
    assert second.json()["counts"] is None
    same = await client.get(url, headers={"if-none-match": second.headers["etag"]})
    assert same.status_code == 304
    await Vote.update({Vote.status: CLOSED, Vote.closed_at: NOW}).where(Vote.id == vote_id)
    await VoteOption.update(
        {VoteOption.tally: "[1, 0, 0]", VoteOption.rank: 1, VoteOption.adopted: True}
    ).where(VoteOption.vote == vote_id)
    closed = await client.get(url, headers={"if-none-match": second.headers["etag"]})
    assert closed.status_code == 200
    assert closed.json()["counts"] == {"yes": 1, "no": 0, "abstain": 0}


# Absolute addresses


async def test_no_address_is_taken_from_the_request(client: AsyncClient) -> None:
    world = await build_world()
    for n in range(3):
        await add_proposal(world.table_a, f"Proposition {n}", latitude=43.33, longitude=5.41)
    forged = {
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "https",
        "forwarded": "host=evil.example;proto=https",
        "x-original-url": "http://evil.example/",
    }
    page = await client.get(f"{API}?limit=1", headers=forged)
    assert page.status_code == 200
    assert page.json()["next"].startswith(BASE + "/")
    assert all(item["url"].startswith(BASE + "/") for item in page.json()["items"])
    for path in ("/data/proposals.csv", "/data/votes.jsonl", "/data/proposals.geojson",
                 "/data/meetings.csv", "/data/briefs.jsonl"):  # fmt: skip
        download = await client.get(path, headers=forged)
        assert download.status_code == 200
        assert "evil.example" not in download.text
    refused = await client.get(API, headers={"host": "evil.example"})
    assert refused.status_code == 400
    assert "evil.example" not in refused.text or refused.headers.get("location") is None


# Downloads and shared caches


async def test_a_download_shared_caches_may_keep_sets_no_cookie(client: AsyncClient) -> None:
    """A download says `Cache-Control: public`: a shared cache (a CDN, a proxy's cache) may keep
    it and hand it to the next visitors, cookies included. Then everybody behind it would get
    the first visitor's CSRF token (a token known to an attacker defeats the double-submit
    check) and language. A response any cache may keep must set no cookie (as static files)."""
    world = await build_world()
    await add_proposal(world.table_a)
    for url in ("/data/proposals.csv", "/tables/flamants-iris/data/votes.jsonl",
                "/organisations/avec-nous/data/proposals.geojson",
                "/data/meetings.csv?lang=ar"):  # fmt: skip
        client.cookies.clear()
        response = await client.get(url)
        assert response.status_code == 200
        assert "public" in response.headers["cache-control"]
        assert "set-cookie" not in response.headers, (url, response.headers["set-cookie"])


async def test_downloads_for_a_signed_in_manager_equal_the_anonymous_ones(
    client: AsyncClient,
) -> None:
    made = await _secret_world()
    anonymous = {}
    for dataset in open_data.DATASETS:
        anonymous[dataset] = (await client.get(f"/tables/flamants-iris/data/{dataset}.jsonl")).text
    for role in ("facilitator_a", "coordinator_a", "admin"):
        client.cookies.clear()
        await sign_in(client, made["world"].users[role])
        for dataset in open_data.DATASETS:
            got = await client.get(f"/tables/flamants-iris/data/{dataset}.jsonl")
            assert got.text == anonymous[dataset], (role, dataset)


# The follow-up API's filters


async def test_the_follow_up_api_refuses_an_unknown_filter_as_the_proposals_api_does(
    client: AsyncClient,
) -> None:
    """voix.opendata: "A parameter out of bounds is refused (400), never silently corrected."
    The proposals API refuses an unknown theme or status with what is known; the follow-up
    API must not answer every row as if no filter had been given."""
    made = await _secret_world()
    assert made["brief"]
    everything = (await client.get("/api/v1/tables/flamants-iris/follow-up")).json()
    assert everything["total"] == 1
    for query in ("theme=nope", "status=nope", "theme=housing%27--"):
        response = await client.get(f"/api/v1/tables/flamants-iris/follow-up?{query}")
        assert response.status_code == 400, (query, response.json().get("total"))
        assert response.json()["status_code"] == 400


# JSON Lines


async def test_each_jsonl_record_is_one_line_whatever_splits_the_lines(
    client: AsyncClient,
) -> None:
    """The forms keep U+0085 (NEL, a C1 control: voix.forms.clean_text drops C0 controls and
    U+2028/U+2029 only), and JSON Lines is written with ensure_ascii=False: a record holding
    it is cut in two by every reader that splits lines by Unicode's rules (Python's
    str.splitlines(), the tests of this project included)."""
    from voix.forms import clean_text

    world = await build_world()
    typed = clean_text("Première ligne\x85seconde ligne", multiline=True)
    assert "\x85" in typed  # what a resident may type reaches the database
    await add_proposal(world.table_a, "Un texte en deux lignes", body=typed)
    await add_proposal(world.table_a, "Un autre", latitude=43.33, longitude=5.41, body=typed)
    jsonl = (await export("proposals", "jsonl", open_data.Scope())).decode()
    assert [json.loads(line)["body"] for line in jsonl.splitlines()] == [typed, typed]
    download = (await client.get("/data/proposals.jsonl")).text
    assert len(download.splitlines()) == 2


# Many exports at once


async def test_parallel_vote_exports_close_a_due_vote_once_and_agree(client: AsyncClient) -> None:
    from audit.models import AuditEntry

    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un city stade", status="voting")
    vote = await Vote.insert(
        Vote(
            table=world.table_a["id"],
            proposal=proposal,
            question="Un city stade ?",
            status=OPEN,
            opened_at=NOW - timedelta(days=3),
            closes_at=datetime.now(UTC) - timedelta(minutes=5),
        )
    ).returning(Vote.id)
    await VoteOption.insert(
        VoteOption(vote=vote[0]["id"], position=0, proposal=proposal, label="Un city stade ?")
    )
    urls = ["/data/votes.jsonl", "/tables/flamants-iris/data/votes.jsonl",
            "/organisations/avec-nous/data/votes.jsonl", "/data/votes.csv"] * 2  # fmt: skip
    answers = await asyncio.gather(*(client.get(url) for url in urls))
    assert [a.status_code for a in answers] == [200] * len(urls)
    rows = [json.loads(a.text) for a in answers if "jsonl" in str(a.url)]
    assert all(row["status"] == CLOSED for row in rows)
    assert len({json.dumps(row, sort_keys=True) for row in rows}) == 1
    closings = await AuditEntry.count().where(AuditEntry.action == "vote.closed")
    assert closings == 1


async def test_an_empty_site_answers_empty_everywhere(client: AsyncClient) -> None:
    await build_world()
    api = await client.get(API)
    assert api.status_code == 200
    assert api.json() == {"items": [], "next": None, "limit": 50}
    for dataset in open_data.DATASETS:
        for fmt in formats_of(dataset):
            response = await client.get(f"/data/{dataset}.{fmt}")
            assert response.status_code == 200
            if fmt == "jsonl":
                assert response.content == b""
            elif fmt == "geojson":
                assert response.json()["features"] == []
            else:
                assert len(response.content.decode("utf-8-sig").strip().splitlines()) == 1


async def test_head_of_a_large_download_reads_no_more_than_a_batch(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD is cheap: it must not run the whole export to throw it away."""
    world = await build_world()
    for start in range(0, 3000, 500):
        await Proposal.insert(
            *[
                Proposal(table=world.table_a["id"], title=f"P {n}", body="x" * 200,
                         theme="housing", language="fr")
                for n in range(start, start + 500)
            ]
        )  # fmt: skip
    produced: list[int] = []
    real = open_data.rows

    async def counting(dataset: str, scope: open_data.Scope) -> Any:
        async for row in real(dataset, scope):
            produced.append(row["id"])
            yield row

    monkeypatch.setattr(open_data, "rows", counting)
    head = await client.head("/data/proposals.csv")
    await asyncio.sleep(0.5)
    assert head.status_code == 200
    assert head.content == b""
    assert len(produced) <= open_data.BATCH
    produced.clear()
    got = await client.get("/data/proposals.csv")
    assert got.status_code == 200
    assert len(produced) == 3000


# Real parallel requests, a real server


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["VOIX_ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver.local"
    return env


async def test_paging_in_parallel_while_others_add_support_and_hide(engine_left_unstarted) -> None:
    """Four clients page through the same table on a real server, while other requests add
    proposals, support and hide others: none sees a proposal twice, and each sees every
    proposal that was there from start to end and never hidden."""
    from voix import db

    await db.engine().start()
    try:
        world = await build_world()
        before = [
            await add_proposal(
                world.table_a, f"Existante {n}", created_at=NOW + timedelta(seconds=n // 3)
            )
            for n in range(60)
        ]
        to_hide = set(before[5::9])
        stop = asyncio.Event()

        async def disturb() -> None:
            n = 0
            pending = sorted(to_hide)
            while not stop.is_set():
                n += 1
                await add_proposal(world.table_a, f"Ajoutée {n}")
                await Proposal.update({Proposal.supports: Proposal.supports + 1}).where(
                    Proposal.id == before[n % len(before)]
                )
                if pending:
                    await Proposal.update({Proposal.hidden_at: datetime.now(UTC)}).where(
                        Proposal.id == pending.pop()
                    )
                await asyncio.sleep(0.005)

        with replica(_server_env()) as base:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:

                async def page_through(sort: str) -> list[int]:
                    ids: list[int] = []
                    url: str | None = f"{API}?limit=7{sort}"
                    while url:
                        response = await http.get(url, headers={"host": "testserver.local"})
                        assert response.status_code == 200, response.text
                        page = response.json()
                        ids += [item["id"] for item in page["items"]]
                        url = page["next"] and page["next"].removeprefix(BASE)
                    return ids

                disturbing = asyncio.create_task(disturb())
                try:
                    walks = await asyncio.gather(*(page_through("") for _ in range(4)))
                finally:
                    stop.set()
                    await disturbing
        for ids in walks:
            assert len(ids) == len(set(ids)), "a proposal listed twice"
            missing = set(before) - to_hide - set(ids)
            assert not missing, f"skipped: {sorted(missing)}"
    finally:
        await db.engine().stop()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


def _stalled_download(port: int, path: str) -> socket.socket:
    """A client that asks for a download, reads its first bytes, then stops reading."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    s.connect(("127.0.0.1", port))
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: testserver.local\r\nAccept-Encoding: identity\r\n\r\n".encode()
    )
    assert s.recv(1024).startswith(b"HTTP/1.1 200")
    return s


def _holds_the_whole_answer(s: socket.socket) -> bool:
    """Whether what waits to be read already ends the chunked answer (read without taking it:
    reading would let the server go on)."""
    waiting = s.recv(1 << 24, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    return waiting.endswith(b"0\r\n\r\n")


async def _large_site(world: Any) -> None:
    """2,500 proposals as long as the forms allow: a text and a transcription of 4,000
    characters each (about 20 MB of CSV)."""
    body = ("Un long texte pour remplir l'export. " * 120)[:4000]
    for start in range(0, 2500, 250):
        await Proposal.insert(
            *[
                Proposal(table=world.table_a["id"], title=f"P {n}", body=body,
                         transcription=body, theme="housing", language="fr")
                for n in range(start, start + 250)
            ]
        )  # fmt: skip


STALLED = 12  # more than the 10 connections of PostgreSQL's pool


async def test_slow_downloads_hold_no_connection_and_block_nothing(engine_left_unstarted) -> None:
    """Twelve clients start a large download of the whole site and stop reading: the site
    still answers a page, the API, another download and its readiness at once."""
    from voix import db

    await db.engine().start()
    try:
        await _large_site(await build_world())
        with replica(_server_env()) as base:
            port = int(urlsplit(base).port or 80)
            stalled: list[socket.socket] = []
            try:
                for n in range(STALLED):
                    fmt = ("csv", "jsonl", "csv-semicolon")[n % 3]
                    stalled.append(_stalled_download(port, f"/data/proposals.{fmt}"))
                await asyncio.sleep(1.0)
                async with httpx.AsyncClient(base_url=base, timeout=20) as http:
                    headers = {"host": "testserver.local"}
                    started = time.monotonic()
                    for path in (API, "/tables/flamants-iris", "/data/votes.csv",
                                 "/health/ready"):  # fmt: skip
                        response = await http.get(path, headers=headers)
                        assert response.status_code == 200, (path, response.text[:200])
                    assert time.monotonic() - started < 10
                # They were stalled indeed: not one had its whole answer yet.
                assert not any(_holds_the_whole_answer(s) for s in stalled)
            finally:
                for s in stalled:
                    s.close()
    finally:
        await db.engine().stop()


async def test_slow_downloads_keep_the_servers_memory_flat(engine_left_unstarted) -> None:
    """The same twelve stalled downloads: the server's memory grows by less than the 100 MB
    the issue allows an export (each download holds one batch of rows, read and encoded,
    for as long as its client does not read: 1,000 rows of the longest texts, ~10 MB)."""
    from voix import db

    await db.engine().start()
    try:
        await _large_site(await build_world())
        with serving(_server_env()) as (base, process):
            port = int(urlsplit(base).port or 80)
            async with httpx.AsyncClient(base_url=base, timeout=20) as http:  # warm up
                await http.get("/data/votes.csv", headers={"host": "testserver.local"})
            await asyncio.sleep(0.5)
            before = _rss_kib(process.pid)
            stalled: list[socket.socket] = []
            try:
                for n in range(STALLED):
                    fmt = ("csv", "jsonl", "csv-semicolon")[n % 3]
                    stalled.append(_stalled_download(port, f"/data/proposals.{fmt}"))
                await asyncio.sleep(1.5)
                grown_mib = (_rss_kib(process.pid) - before) / 1024
                # The figure, for whoever reads the run (a test writes nowhere outside it).
                print(f"{DATABASE_KIND}: {STALLED} stalled, RSS +{grown_mib:.1f} MiB")
                assert not any(_holds_the_whole_answer(s) for s in stalled)
                assert grown_mib < 100, f"the server grew by {grown_mib:.0f} MiB"
            finally:
                for s in stalled:
                    s.close()
    finally:
        await db.engine().stop()


async def test_downloads_past_the_limit_are_asked_to_come_back_and_the_count_comes_down(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exports import data_controllers

    await build_world()
    assert data_controllers._downloads == 0
    done = await client.get("/data/proposals.csv")
    assert done.status_code == 200
    assert data_controllers._downloads == 0  # counted while it ran, not after
    monkeypatch.setattr(data_controllers, "_downloads", data_controllers.MAX_DOWNLOADS)
    busy = await client.get("/data/proposals.csv")
    assert busy.status_code == 503
    assert busy.headers["retry-after"].isdigit()
    assert "text/html" in busy.headers["content-type"]
