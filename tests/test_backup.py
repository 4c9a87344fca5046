"""`voix backup` and `voix restore`: a round trip on the test's own database (SQLite or
PostgreSQL), with an open vote whose sealed ballots must open after the restore."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from httpx import AsyncClient

from audit.keys import check_key
from proposals.models import Proposal
from tests.conftest import DATABASE_KIND
from tests.factories import add_proposal, build_world, run_voix
from tests.test_keys import OTHER_KEY
from tests.test_votes import add_voters, cast_as, close_by_hand, open_vote_on, receipt_of
from voix import db
from voix.backup import POSTGRESQL, SQLITE, file_kind
from voix.settings import PROJECT_ROOT
from votes.models import OPEN, Ballot, Participation, SealedBallot, Vote, VoteOption

THIS_KIND = SQLITE if DATABASE_KIND == "sqlite" else POSTGRESQL
OTHER_MAGIC = b"PGDMP" if DATABASE_KIND == "sqlite" else b"SQLite format 3\x00"


def restore(file: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`voix restore` with the site stopped, as the README asks: here, the test's pool closed
    (PostgreSQL drops and recreates the tables under it)."""
    return run_voix("restore", str(file), env=env)


async def test_round_trip_brings_back_the_data_and_the_open_vote(
    client: AsyncClient, tmp_path: Path
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    voters = await add_voters(world, 3)  # members before the vote opens
    vote_id = await open_vote_on(client, world, proposal)
    receipts = []
    for voter in voters[:2]:
        cast = await cast_as(client, voter, vote_id, {"choice": "yes"})
        receipts.append(receipt_of(cast))

    backup = tmp_path / "voix.backup"
    made = run_voix("backup", "--output", str(backup))
    assert made.returncode == 0, made.stderr
    assert file_kind(backup) == THIS_KIND
    assert os.listdir(tmp_path) == ["voix.backup"]  # no partial file left beside it

    # After the backup: a third ballot, a new proposal, a proposal erased.
    await cast_as(client, voters[2], vote_id, {"choice": "no"})
    await add_proposal(world.table_a, "Written after the backup")
    await Proposal.delete().where(Proposal.title == "Written after the backup")
    await add_proposal(world.table_b, "Also after the backup")
    assert await Participation.count() == 3

    await db.engine().stop()
    restored = restore(backup)
    await db.engine().start()
    assert restored.returncode == 0, restored.stderr
    # The votes open at backup time are named: their later ballots are lost.
    assert f"vote {vote_id}: Adopter ? (2 voted before the backup)" in restored.stdout
    assert "ballots cast after the backup are lost" in restored.stdout
    assert "continuous archiving" in restored.stdout

    titles = {row["title"] for row in await Proposal.select(Proposal.title)}
    assert titles == {"Un banc devant l'école"}
    assert await Participation.count() == 2
    assert await SealedBallot.count() == 2
    assert (await Vote.select(Vote.status).first())["status"] == OPEN
    # The sealed ballots open with the key: the vote closes and counts the two of them.
    await close_by_hand(client, world, vote_id)
    assert sorted(row["receipt"] for row in await Ballot.select(Ballot.receipt)) == sorted(receipts)
    assert (await VoteOption.select(VoteOption.tally).first())["tally"] == "[2, 0, 0]"


async def test_a_backup_of_the_other_kind_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Still here")
    other = tmp_path / "other.backup"
    other.write_bytes(OTHER_MAGIC + b"\0" * 64)
    refused = restore(other)
    assert refused.returncode == 2
    assert f"backup and DATABASE_URL is a {THIS_KIND} database" in refused.stderr
    assert "Traceback" not in refused.stderr
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    refused = restore(junk)
    assert refused.returncode == 2
    assert "is not a backup made by `voix backup`" in refused.stderr
    missing = restore(tmp_path / "missing.backup")
    assert missing.returncode == 2
    assert "No such file" in missing.stderr
    assert [row["title"] for row in await Proposal.select(Proposal.title)] == ["Still here"]


async def test_tables_of_a_newer_version_go_and_migrate_runs_after(tmp_path: Path) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Before the backup")
    backup = tmp_path / "voix.backup"
    assert run_voix("backup", "--output", str(backup)).returncode == 0
    # As if a newer version had migrated since: a table the backup does not know.
    await db.engine().run_ddl('CREATE TABLE "from_a_newer_version" (id INTEGER PRIMARY KEY)')
    restored = restore(backup)
    assert restored.returncode == 0, restored.stderr
    assert not await _table_exists("from_a_newer_version")
    migrated = run_voix("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert [row["title"] for row in await Proposal.select(Proposal.title)] == ["Before the backup"]


async def test_a_damaged_backup_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "In the backup")
    backup = tmp_path / "voix.backup"
    assert run_voix("backup", "--output", str(backup)).returncode == 0
    await add_proposal(world.table_a, "After the backup")
    content = backup.read_bytes()
    backup.write_bytes(content[: len(content) // 2])  # a copy cut short
    refused = restore(backup)
    assert refused.returncode == 2, refused.stdout
    assert refused.stderr.startswith("voix restore:")
    titles = {row["title"] for row in await Proposal.select(Proposal.title)}
    assert titles == {"In the backup", "After the backup"}


async def _table_exists(name: str) -> bool:
    if DATABASE_KIND == "sqlite":
        query = f"SELECT name FROM sqlite_master WHERE name = '{name}'"
    else:
        query = f"SELECT tablename FROM pg_tables WHERE tablename = '{name}'"
    return bool(await db.engine().run_ddl(query))


async def test_restoring_a_backup_used_with_another_key_says_so(tmp_path: Path) -> None:
    await check_key()  # the database remembers the suite's key
    backup = tmp_path / "voix.backup"
    assert run_voix("backup", "--output", str(backup)).returncode == 0
    restored = restore(backup, env={**os.environ, "VOIX_SECRET_KEY": OTHER_KEY})
    assert restored.returncode == 0, restored.stderr
    assert "used with another VOIX_SECRET_KEY" in restored.stdout
    refused = run_voix("close-due", env={**os.environ, "VOIX_SECRET_KEY": OTHER_KEY})
    assert refused.returncode == 2
    assert "VOIX_SECRET_KEY is not the key this database was used with" in refused.stderr


async def test_an_unwritable_output_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    made = run_voix("backup", "--output", str(tmp_path / "missing-dir" / "voix.backup"))
    assert made.returncode == 2
    assert made.stderr.startswith("voix backup:")
    assert "Traceback" not in made.stderr


# Writes proposals' titles one per transaction, as fast as it can, until killed.
WRITER = """
import asyncio, sys
from proposals.models import Proposal
from tests.factories import add_proposal
from tables.models import Table

async def main():
    table = await Table.select().first()
    n = 0
    while True:
        await add_proposal(table, f"written while backing up {n}")
        n += 1
        if n == 1:
            print("writing", flush=True)

asyncio.run(main())
"""


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="PostgreSQL's pg_dump is its own")
def test_a_sqlite_backup_is_consistent_while_the_site_writes(tmp_path: Path) -> None:
    asyncio.run(build_world())
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        backups = []
        for n in range(3):
            backup = tmp_path / f"during-{n}.backup"
            made = run_voix("backup", "--output", str(backup))
            assert made.returncode == 0, made.stderr
            backups.append(backup)
            time.sleep(0.2)
    finally:
        writer.kill()
        writer.wait()
    counts = []
    for backup in backups:
        with sqlite3.connect(backup) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            counts.append(copy.execute("SELECT count(*) FROM proposal").fetchone()[0])
        assert not Path(f"{backup}-wal").exists()
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]  # taken while rows were being written


@pytest.mark.skipif(
    DATABASE_KIND != "postgres", reason="PostgreSQL's heap order (SQLite: WITHOUT ROWID)"
)
async def test_a_dump_does_not_list_sealed_ballots_in_the_order_they_were_cast(
    client: AsyncClient, tmp_path: Path
) -> None:
    """pg_dump writes a table's rows in their physical order, which follows insertion: the
    sealed ballots would line up with the participations. The backup sorts them first."""
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    voters = await add_voters(world, 12)
    vote_id = await open_vote_on(client, world, proposal)
    for voter in voters:
        await cast_as(client, voter, vote_id, {"choice": "yes"})

    async def physical_order() -> list[str]:
        rows = await SealedBallot.raw("SELECT id::text AS id FROM sealed_ballot ORDER BY ctid")
        return [row["id"] for row in rows]

    cast_order = await physical_order()
    assert cast_order != sorted(cast_order)  # random keys, appended as cast: unsorted
    made = run_voix("backup", "--output", str(tmp_path / "voix.backup"))
    assert made.returncode == 0, made.stderr
    dumped = await physical_order()  # what pg_dump read: the order of the random keys
    assert dumped == sorted(dumped, key=lambda key: bytes.fromhex(key.replace("-", "")))
    assert sorted(dumped) == sorted(cast_order)
