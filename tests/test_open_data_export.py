"""Open-data exports (issue 17): what they hold, what they never hold, and how they are encoded."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from accounts.models import User
from exports import open_data
from exports.models import Brief, BriefSignatory
from meetings.models import Attendance, Meeting
from proposals.models import MERGED, Comment, Proposal, StatusChange, Support, Translation
from tables.models import Table
from tests.factories import add_proposal, add_user, build_world, run_voix, seat
from voix.i18n import LANGUAGES
from votes import box
from votes.models import CLOSED, Participation, Vote, VoteOption

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


async def export(dataset: str, fmt: str, scope: open_data.Scope, **kw: Any) -> bytes:
    return b"".join([chunk async for chunk in open_data.stream(dataset, fmt, scope, **kw)])


async def gathered(dataset: str, scope: open_data.Scope) -> list[dict[str, Any]]:
    return [row async for row in open_data.rows(dataset, scope)]


def read_csv(data: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM, for spreadsheets"
    return list(
        csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter)
    )


def every_export_format(dataset: str) -> list[str]:
    return [f for f in open_data.FORMATS if f != "geojson" or dataset == "proposals"]


# What is exported


async def test_a_table_s_proposals_are_those_its_list_page_shows(client: AsyncClient) -> None:
    world = await build_world()
    table, other = world.table_a, world.table_b
    shown = [await add_proposal(table, f"Proposition numéro {n}") for n in range(5)]
    hidden = await add_proposal(table, "Cachée par la modération", hidden_at=NOW)
    merged = await add_proposal(table, "Doublon fusionné", status=MERGED, merged_into=shown[0])
    elsewhere = await add_proposal(other, "Aux Aygalades")
    resident = world.users["resident_a"]
    # Two visible comments (a comment and its reply), one hidden: counted 2.
    top = await Comment.insert(
        Comment(proposal=shown[1], author=resident, body="D'accord", created_at=NOW)
    ).returning(Comment.id)
    await Comment.insert(
        Comment(proposal=shown[1], parent=top[0]["id"], author=resident, body="Moi aussi"),
        Comment(proposal=shown[1], author=resident, body="Hors sujet", hidden_at=NOW),
    )
    await Support.insert(Support(proposal=shown[2], user=resident, created_at=NOW))
    await Proposal.update({Proposal.supports: 1}).where(Proposal.id == shown[2])

    page = await client.get("/tables/flamants-iris")
    assert page.status_code == 200
    listed = {int(n) for n in re.findall(r'href="/proposals/(\d+)"', page.text)}
    assert listed == set(shown)

    exported = await gathered("proposals", open_data.Scope(table_id=table["id"]))
    assert [row["id"] for row in exported] == sorted(listed)  # in id order, each once
    assert hidden not in listed
    assert merged not in listed
    by_id = {row["id"]: row for row in exported}
    assert by_id[shown[1]]["comments_count"] == 2
    assert by_id[shown[0]]["comments_count"] == 0
    assert by_id[shown[2]]["supports"] == 1
    assert by_id[shown[0]]["table"] == "flamants-iris"
    assert by_id[shown[0]]["organisation"] == "avec-nous"
    assert by_id[shown[0]]["recorded_on_behalf"] is False
    assert [c.name for c in open_data.columns("proposals")] == list(exported[0])

    organisation = await gathered(
        "proposals", open_data.Scope(organisation_id=other["organisation"])
    )
    assert [row["id"] for row in organisation] == [elsewhere]
    site = await gathered("proposals", open_data.Scope())
    assert [row["id"] for row in site] == sorted([*shown, elsewhere])


async def test_status_dates_translations_votes_and_place_of_a_proposal() -> None:
    world = await build_world()
    table = world.table_a
    proposal = await add_proposal(
        table,
        "Un banc devant l'école",
        latitude=43.33,
        longitude=5.41,
        recorded_by=world.users["facilitator_a"],
        status="adopted",
        transcription="Je voudrais un banc.",
    )
    unplaced = await add_proposal(table, "Sans lieu")
    for n, (before, after) in enumerate(
        (("submitted", "discussion"), ("discussion", "voting"), ("voting", "adopted"))
    ):
        await StatusChange.insert(
            StatusChange(
                proposal=proposal,
                from_status=before,
                to_status=after,
                at=datetime(2026, 10, 1 + n, 12, 0, tzinfo=UTC),
            )
        )
    await Translation.insert(
        Translation(
            proposal=proposal,
            language="ar",
            title="مقعد أمام المدرسة",
            body="نريد مقعدا أمام المدرسة",
            updated_at=NOW,
        )
    )
    vote = await Vote.insert(
        Vote(
            table=table["id"],
            proposal=proposal,
            question="Un banc ?",
            status=CLOSED,
            opened_at=datetime(2026, 10, 2, 12, 0, tzinfo=UTC),
            closed_at=datetime(2026, 10, 3, 12, 0, tzinfo=UTC),
        )
    ).returning(Vote.id)
    await VoteOption.insert(
        VoteOption(
            vote=vote[0]["id"],
            position=0,
            proposal=proposal,
            label="Un banc ?",
            tally="[3, 1, 0]",
            rank=1,
            adopted=True,
        )
    )
    rows = {
        row["id"]: row for row in await gathered("proposals", open_data.Scope(table_id=table["id"]))
    }
    row = rows[proposal]
    assert row["discussion_at"] == "2026-10-01T12:00:00Z"
    assert row["voting_at"] == "2026-10-02T12:00:00Z"
    assert row["adopted_at"] == row["status_changed_at"] == "2026-10-03T12:00:00Z"
    assert row["rejected_at"] is None
    assert row["title_ar"] == "مقعد أمام المدرسة"
    assert row["body_ar"] == "نريد مقعدا أمام المدرسة"
    assert row["title_en"] == ""
    assert row["title_fr"] == ""
    assert row["transcription"] == "Je voudrais un banc."
    assert row["last_vote"] == vote[0]["id"]
    assert row["last_vote_adopted"] is True
    assert row["last_vote_closed_at"] == "2026-10-03T12:00:00Z"
    assert row["recorded_on_behalf"] is True
    assert (row["longitude"], row["latitude"]) == (5.41, 43.33)
    assert rows[unplaced]["longitude"] is None
    assert rows[unplaced]["last_vote"] is None
    assert {f"title_{lang}" for lang in LANGUAGES} <= set(row)


# Never anything personal

SENTINELS = (
    "sentinel-xyz@example.org",
    "+33612345678",
    "33612345678",
    "Sentinelle Zorglub",
    "HIDDEN-SENTINEL",
    "HIDDEN-COMMENT-SENTINEL",
    "MERGED-SENTINEL",
)


async def test_no_export_holds_personal_data_or_hidden_content() -> None:
    from voix.demo import seed

    await seed()  # votes (open and closed), meetings with attendance, a brief and its answers
    table = (
        await Table.select(Table.id, Table.organisation)
        .where(Table.slug == "flamants-iris")
        .first()
    )
    assert table is not None
    sentinel = await add_user("sentinel-xyz@example.org", "Sentinelle Zorglub")
    await User.update({User.email: "sentinel-xyz@example.org", User.phone: "+33612345678"}).where(
        User.id == sentinel
    )
    await seat(sentinel, table)
    facilitator = await add_user("facilitatrice-sentinelle")
    theirs = await add_proposal(
        table,
        "La proposition de la résidente",
        author=sentinel,
        recorded_by=facilitator,
        consent_recorded_at=NOW,
        latitude=43.331,
        longitude=5.409,
    )
    await add_proposal(table, "HIDDEN-SENTINEL", author=sentinel, hidden_at=NOW, latitude=43.3)
    await add_proposal(table, "MERGED-SENTINEL", author=sentinel, status=MERGED, merged_into=theirs)
    await Comment.insert(
        Comment(proposal=theirs, author=sentinel, body="Je soutiens", created_at=NOW),
        Comment(proposal=theirs, author=sentinel, body="HIDDEN-COMMENT-SENTINEL", hidden_at=NOW),
    )
    await Support.insert(Support(proposal=theirs, user=sentinel, created_at=NOW))
    open_vote = await Vote.select(Vote.id).where(Vote.status == "open").first()
    assert open_vote is not None
    await Participation.insert(
        Participation(
            vote=open_vote["id"],
            user=sentinel,
            person=f"user:{sentinel}",
            name="Sentinelle Zorglub",
            cast_at=NOW,
        )
    )
    meeting = await Meeting.select(Meeting.id).order_by(Meeting.id).first()
    assert meeting is not None
    await Attendance.insert(
        Attendance(
            meeting=meeting["id"],
            user=sentinel,
            name="Sentinelle Zorglub",
            person="name:sentinelle zorglub",
            method="walk_in",
            checked_in_at=NOW,
        )
    )
    brief = await Brief.select(Brief.id).first()
    assert brief is not None
    await BriefSignatory.insert(
        BriefSignatory(brief=brief["id"], position=9, name="Sentinelle Zorglub", user=sentinel)
    )

    scopes = {
        "table": open_data.Scope(table_id=table["id"]),
        "organisation": open_data.Scope(organisation_id=table["organisation"]),
        "site": open_data.Scope(),
    }
    seen: dict[str, bytes] = {}
    for dataset in open_data.DATASETS:
        for fmt in every_export_format(dataset):
            for where, scope in scopes.items():
                data = await export(dataset, fmt, scope, licence="Licence Ouverte 2.0")
                text = data.decode("utf-8").casefold()
                for secret in SENTINELS:
                    assert secret.casefold() not in text, (dataset, fmt, where, secret)
                seen[f"{dataset}.{fmt}.{where}"] = data
    # The exports are not empty: the sentinel's proposal, comment and attendance are counted.
    mine = [
        json.loads(line)
        for line in seen["proposals.jsonl.table"].splitlines()
        if json.loads(line)["id"] == theirs
    ]
    assert mine[0]["comments_count"] == 1
    assert mine[0]["recorded_on_behalf"] is True
    for dataset in ("votes", "meetings", "briefs"):
        assert len(seen[f"{dataset}.jsonl.site"].splitlines()) >= 1
    meetings = [json.loads(line) for line in seen["meetings.jsonl.table"].splitlines()]
    first = next(row for row in meetings if row["id"] == meeting["id"])
    assert first["attendance"] == await Attendance.count().where(
        Attendance.meeting == meeting["id"]
    )
    assert first["attendance_walk_in"] >= 1
    assert [row["id"] for row in meetings] == sorted(row["id"] for row in meetings)
    # Results and the ballot box's fingerprint for closed votes only.
    for vote in (json.loads(line) for line in seen["votes.jsonl.site"].splitlines()):
        if vote["status"] == CLOSED:
            assert vote["results"]
            assert vote["ballot_box_sha256"] == await box.fingerprint(vote["id"])
            assert vote["ballot_box_url"].endswith(f"/votes/{vote['id']}/ballots.json")
        else:
            assert vote["results"] is None
            assert vote["ballot_box_sha256"] is None
            assert all("tally" not in option for option in vote["options"])
    briefs = [json.loads(line) for line in seen["briefs.jsonl.site"].splitlines()]
    assert any(row["answered"] and row["answers"][0]["summary"] for row in briefs)
    assert any(not row["answered"] and row["answers"] == [] for row in briefs)


# Encodings


TRICKY = {
    '=HYPERLINK("http://evil.example","clic")': '\'=HYPERLINK("http://evil.example","clic")',
    "+33 6 00 00 00 00 appelle": "'+33 6 00 00 00 00 appelle",
    "-2+3 et la suite": "'-2+3 et la suite",
    "@SUM(A1:A2) encore": "'@SUM(A1:A2) encore",
    "\tTabulation devant": "'\tTabulation devant",
}


async def test_csv_opens_in_a_spreadsheet_with_text_intact_and_formulas_neutralised() -> None:
    world = await build_world()
    table = world.table_a
    arabic = await add_proposal(
        table, "مدرسة الحي تحتاج إلى إصلاح", body='السقف يتسرب; "المطر"\nكل شتاء', language="ar"
    )
    accents = await add_proposal(
        table, "École Saint-Exupéry : cour à rénover", body="Çà et là, œuvres; «guillemets»"
    )
    tricky = {await add_proposal(table, title): expected for title, expected in TRICKY.items()}
    scope = open_data.Scope(table_id=table["id"])
    comma = await export("proposals", "csv", scope)
    semicolon = await export("proposals", "csv-semicolon", scope)
    assert comma.count(b"\xef\xbb\xbf") == 1
    assert semicolon.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in comma  # RFC 4180 line ends
    rows = read_csv(comma)
    assert rows == read_csv(semicolon, ";")  # the same cells either way
    assert comma.split(b"\r\n", 1)[0].count(b";") == 0
    assert semicolon.split(b"\r\n", 1)[0].decode("utf-8-sig").split(";")[:3] == [
        "id",
        "url",
        "table",
    ]
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[arabic]["title"] == "مدرسة الحي تحتاج إلى إصلاح"
    assert by_id[arabic]["body"] == 'السقف يتسرب; "المطر"\nكل شتاء'
    assert by_id[accents]["title"] == "École Saint-Exupéry : cour à rénover"
    assert by_id[accents]["body"] == "Çà et là, œuvres; «guillemets»"
    for proposal_id, expected in tricky.items():
        assert by_id[proposal_id]["title"] == expected
    # Numbers, booleans and empty values as a spreadsheet reads them.
    assert by_id[accents]["supports"] == "0"
    assert by_id[accents]["recorded_on_behalf"] == "false"
    assert by_id[accents]["longitude"] == ""
    assert list(rows[0]) == [column.name for column in open_data.columns("proposals")]
    # JSON Lines keeps the words as written: the formula guard is CSV's alone.
    lines = [json.loads(line) for line in (await export("proposals", "jsonl", scope)).splitlines()]
    assert {line["title"] for line in lines} >= set(TRICKY)


def test_csv_cells() -> None:
    assert open_data.csv_cell(None) == ""
    assert open_data.csv_cell(True) == "true"
    assert open_data.csv_cell(-1.5) == "-1.5"  # a number is not a formula
    assert open_data.csv_cell("-1.5") == "'-1.5"
    assert open_data.csv_cell("\rx") == "'\rx"
    assert open_data.csv_cell(["fr", "ar"]) == '["fr","ar"]'
    assert open_data.csv_cell("a=b") == "a=b"


async def test_geojson_holds_placed_proposals_as_longitude_latitude() -> None:
    world = await build_world()
    table = world.table_a
    placed = await add_proposal(table, "Ici", latitude=43.3312, longitude=5.4101)
    await add_proposal(table, "Nulle part")
    await add_proposal(table, "Caché", latitude=43.3, longitude=5.4, hidden_at=NOW)
    data = await export(
        "proposals", "geojson", open_data.Scope(table_id=table["id"]), licence="Licence Ouverte 2.0"
    )
    collection = json.loads(data)
    assert collection["type"] == "FeatureCollection"
    assert collection["licence"] == "Licence Ouverte 2.0"
    assert [feature["id"] for feature in collection["features"]] == [placed]
    feature = collection["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [5.4101, 43.3312]}
    assert feature["properties"]["title"] == "Ici"
    empty = json.loads(await export("proposals", "geojson", open_data.Scope(table_id=-1)))
    assert empty == {"type": "FeatureCollection", "features": []}


async def test_jsonl_is_one_object_per_line() -> None:
    world = await build_world()
    ids = [await add_proposal(world.table_a, f"Ligne {n}", body="deux\nlignes") for n in range(3)]
    data = await export("proposals", "jsonl", open_data.Scope())
    lines = data.decode("utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert data.endswith(b"\n")


# Streaming


async def test_a_large_export_streams_in_chunks_across_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await build_world()
    monkeypatch.setattr(open_data, "BATCH", 7)  # many batches: none skipped, none repeated
    body = "Un texte assez long pour remplir les morceaux du flux. " * 12
    rows = [
        Proposal(
            table=world.table_a["id"],
            title=f"Proposition {n}",
            body=body,
            theme="housing",
            language="fr",
            hidden_at=NOW if n % 10 == 3 else None,
        )
        for n in range(250)
    ]
    await Proposal.insert(*rows)
    listed = await Proposal.select(Proposal.id).where(Proposal.hidden_at.is_null())
    chunks = [chunk async for chunk in open_data.stream("proposals", "csv", open_data.Scope())]
    assert len(chunks) > 1
    assert all(len(chunk) < 3 * open_data.CHUNK_BYTES for chunk in chunks)
    exported = [int(row["id"]) for row in read_csv(b"".join(chunks))]
    assert exported == sorted(row["id"] for row in listed)
    assert len(exported) == 225


async def test_a_small_table_among_large_ones_counts_its_own_comments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await build_world()
    monkeypatch.setattr(open_data, "BATCH", 2)
    mine: list[int] = []
    for n in range(5):  # table A's proposals, far apart among table B's
        mine.append(await add_proposal(world.table_a, f"Chez nous {n}"))
        for m in range(6):
            theirs = await add_proposal(world.table_b, f"Ailleurs {n}-{m}")
            await Comment.insert(Comment(proposal=theirs, body="Ailleurs", created_at=NOW))
    await Comment.insert(
        *[Comment(proposal=mine[1], body=f"Ici {n}", created_at=NOW) for n in range(3)]
    )
    rows = await gathered("proposals", open_data.Scope(table_id=world.table_a["id"]))
    assert [row["id"] for row in rows] == mine
    assert [row["comments_count"] for row in rows] == [0, 3, 0, 0, 0]
    site = await gathered("proposals", open_data.Scope())
    assert sum(row["comments_count"] for row in site) == 33


# The interface


def test_unknown_datasets_and_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        open_data.stream("users", "csv", open_data.Scope())
    with pytest.raises(ValueError, match="unknown format"):
        open_data.stream("proposals", "xlsx", open_data.Scope())
    with pytest.raises(ValueError, match="GeoJSON is for proposals only"):
        open_data.stream("votes", "geojson", open_data.Scope())
    with pytest.raises(ValueError, match="unknown dataset"):
        open_data.columns("users")
    with pytest.raises(ValueError, match="unknown format"):
        open_data.media_type("xml")
    assert open_data.media_type("csv") == "text/csv; charset=utf-8"
    assert open_data.media_type("csv-semicolon") == "text/csv; charset=utf-8"
    assert open_data.media_type("jsonl") == "application/x-ndjson"
    assert open_data.media_type("geojson") == "application/geo+json"
    assert open_data.filename("proposals", "csv", "flamants-iris") == (
        "voix-proposals-flamants-iris.csv"
    )
    assert open_data.filename("votes", "csv-semicolon", "avec-nous") == (
        "voix-votes-avec-nous-semicolon.csv"
    )
    assert open_data.filename("meetings", "jsonl", "") == "voix-meetings.jsonl"
    assert open_data.filename("proposals", "geojson", "../x") == "voix-proposals-x.geojson"


def test_every_column_is_described_in_english_snake_case() -> None:
    for dataset in open_data.DATASETS:
        names = [column.name for column in open_data.columns(dataset)]
        assert len(names) == len(set(names))
        for column in open_data.columns(dataset):
            assert re.fullmatch(r"[a-z][a-z0-9_]*", column.name)
            assert column.description
            assert column.description.endswith((".", ")"))


# The command


async def test_cli_writes_the_export_and_refuses_an_unknown_table(tmp_path: Path) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer l'ascenseur")
    out = tmp_path / "proposals.csv"
    done = run_voix(
        "export", "proposals", "--format", "csv-semicolon", "--table", "flamants-iris",
        "--output", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_csv(out.read_bytes(), ";")
    assert [int(row["id"]) for row in rows] == [proposal]
    assert rows[0]["title"] == "Réparer l'ascenseur"
    assert not (tmp_path / "proposals.csv.tmp").exists()

    elsewhere = await add_proposal(world.table_b, "Aux Aygalades")
    lines = run_voix(
        "export", "proposals", "--format", "jsonl", "--organisation", "collectif-des-femmes",
        "--output", "-",
    )  # fmt: skip
    assert lines.returncode == 0, lines.stderr
    assert [json.loads(line)["id"] for line in lines.stdout.splitlines()] == [elsewhere]

    missing = tmp_path / "missing.csv"
    refused = run_voix("export", "votes", "--table", "nowhere", "--output", str(missing))
    assert refused.returncode == 2
    assert "nowhere" in refused.stderr
    assert not missing.exists()
    assert not (tmp_path / "missing.csv.tmp").exists()
    wrong = run_voix("export", "votes", "--format", "geojson", "--output", str(missing))
    assert wrong.returncode == 2
    assert not missing.exists()
