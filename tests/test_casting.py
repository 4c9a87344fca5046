"""Casting a ballot when the world misbehaves: the database failing just after the commit,
the same form sent twice at once, and a copy of the database taken while the vote is open.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from httpx import AsyncClient, Response

from accounts.services import open_session
from audit.models import AuditEntry
from meetings.models import Tablet
from tests.conftest import DATABASE_KIND, make_client
from tests.factories import add_proposal, build_world, csrf_token, post_form, sign_in, t
from tests.room_world import build_room, hand_tablet, start_tablet
from tests.test_votes import add_voters, close_by_hand, open_vote_on, receipt_of
from voix import crypto, db
from voix.web import SESSION_COOKIE
from votes import services
from votes.models import Ballot, Participation, SealedBallot

SUBMISSION = re.compile(r'<input type="hidden" name="submission" value="([A-Za-z0-9_-]+)">')


def submission_of(page: Response) -> str:
    found = SUBMISSION.search(page.text)
    assert found, page.text[-2000:]
    return found.group(1)


@contextmanager
def database_fails_after_casting(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Every query fails once a ballot is committed, as when PostgreSQL restarts or the worker's
    connection dies right then; the database itself stays real. Yields how many failed."""
    state = {"down": 0, "failed": 0}
    engine = db.engine()
    run_querystring = engine.run_querystring
    record_ballot = services.record_ballot

    async def failing(querystring: Any, in_pool: bool = True) -> Any:
        if state["down"]:
            state["failed"] += 1
            raise ConnectionResetError("the database went away")
        return await run_querystring(querystring, in_pool=in_pool)

    async def then_down(*args: Any, **kwargs: Any) -> Any:
        stored = await record_ballot(*args, **kwargs)
        state["down"] = 1
        return stored

    monkeypatch.setattr(engine, "run_querystring", failing)
    monkeypatch.setattr(services, "record_ballot", then_down)
    try:
        yield state
    finally:
        monkeypatch.undo()


async def test_a_ballot_stored_just_before_the_database_fails_gets_its_receipt(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14, failure 2: the ballot was stored, then every later query failed; the voter saw
    "may not have been saved", then "already voted" on trying again."""
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"])
    form = {"choice": "no", "submission": submission_of(await client.get(f"/votes/{vote_id}"))}
    token = await csrf_token(client)

    with database_fails_after_casting(monkeypatch) as state:
        cast = await client.post(f"/votes/{vote_id}/ballot", data={**form, "_csrf_token": token})
    assert state["failed"] > 0  # the page's queries did fail after the commit
    assert cast.status_code == 200, cast.text[-2000:]
    receipt = receipt_of(cast)
    assert cast.headers["cache-control"] == "no-store"

    # Sent again (the voter did not believe it): the same ballot, the same receipt.
    again = await post_form(client, f"/votes/{vote_id}/ballot", form)
    assert again.status_code == 200, again.text[-2000:]
    assert receipt_of(again) == receipt
    assert await SealedBallot.count() == 1
    assert await Participation.count() == 1

    # Another ballot of the same voter is still a second ballot: a new form, or the same form
    # with other choices (went back, changed them), is refused.
    fresh = services.new_submission()  # another tab's form, opened before voting
    for other in ({"choice": "yes", "submission": fresh}, {**form, "choice": "yes"}):
        refused = await post_form(client, f"/votes/{vote_id}/ballot", other)
        assert refused.status_code == 409
        assert t(services.ALREADY_VOTED) in refused.text
    assert await SealedBallot.count() == 1

    # The same form once the vote has closed still finds its ballot, and the receipt is the
    # one in the ballot box.
    await close_by_hand(client, world, vote_id)
    await sign_in(client, world.users["resident_a"])
    late = await post_form(client, f"/votes/{vote_id}/ballot", form)
    assert late.status_code == 200
    assert receipt_of(late) == receipt
    assert await Ballot.select(Ballot.receipt, Ballot.marks).first() == {
        "receipt": receipt,
        "marks": "[1]",  # 1: no
    }


async def test_the_receipt_comes_from_the_form_and_the_voter(client: AsyncClient) -> None:
    """Two voters copying one form's code get two receipts; a form without a code (sent by a
    page from before the upgrade) is still one ballot."""
    world = await build_world()
    (voter,) = await add_voters(world, 1)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"])
    code = submission_of(await client.get(f"/votes/{vote_id}"))
    first = await post_form(
        client, f"/votes/{vote_id}/ballot", {"choice": "yes", "submission": code}
    )
    await sign_in(client, world.users["facilitator_a"])
    second = await post_form(
        client, f"/votes/{vote_id}/ballot", {"choice": "yes", "submission": code}
    )
    assert receipt_of(first) != receipt_of(second)
    await sign_in(client, voter)
    old = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "abstain"})
    assert old.status_code == 200
    assert re.fullmatch(f"[{services.RECEIPT_ALPHABET}]{{8}}", receipt_of(old))
    assert await SealedBallot.count() == 3


async def test_the_same_form_sent_twice_at_once_is_one_ballot_with_one_receipt(
    client: AsyncClient, app: object
) -> None:
    """A double click, or a retry racing the first request: real parallel requests."""
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    session = await open_session(world.users["resident_a"])
    await sign_in(client, world.users["resident_a"])
    code = submission_of(await client.get(f"/votes/{vote_id}"))
    token = await csrf_token(client)

    async def send() -> Response:
        async with make_client(app) as browser:
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            return await browser.post(
                f"/votes/{vote_id}/ballot",
                data={"choice": "yes", "submission": code, "_csrf_token": token},
            )

    answers = await asyncio.gather(*[send() for _ in range(4)])
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len({receipt_of(answer) for answer in answers}) == 1
    assert await SealedBallot.count() == 1
    assert await Participation.count() == 1


async def test_a_copy_of_the_database_during_a_vote_links_no_sealed_ballot_to_its_voter(
    client: AsyncClient,
) -> None:
    """Issue 14: a dump taken during a vote linked each sealed ballot to its voter, by the
    token's clear timestamp and by sequential ids (60 of 60). Here: what the database holds
    while the vote is open, read as an attacker would, with the key to check the pairing."""
    world = await build_world()
    voters = await add_voters(world, 12)
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    receipts = {}
    for voter in voters:
        await sign_in(client, voter)
        page = await client.get(f"/votes/{vote_id}")
        cast = await post_form(
            client, f"/votes/{vote_id}/ballot", {"choice": "yes", "submission": submission_of(page)}
        )
        receipts[f"user:{voter}"] = receipt_of(cast)

    roll = await Participation.select(Participation.person, Participation.cast_at).order_by(
        Participation.id
    )
    in_casting_order = [receipts[row["person"]] for row in roll]
    assert sorted(in_casting_order) == sorted(receipts.values())
    # Rows as a dump lists them (no ORDER BY), and by key.
    stored = await SealedBallot.raw("SELECT id, vote, sealed FROM sealed_ballot")
    assert len(stored) == 12
    assert {column._meta.name for column in SealedBallot._meta.columns} == {"id", "vote", "sealed"}

    def receipt_in(row: dict[str, Any]) -> str:
        return str(json.loads(crypto.unseal(row["sealed"], "ballot", str(vote_id)))["receipt"])

    by_key = sorted(stored, key=lambda row: str(row["id"]))
    assert all(uuid.UUID(str(row["id"])).version == 4 for row in stored)  # random, no order
    assert [receipt_in(row) for row in by_key] != in_casting_order
    if DATABASE_KIND == "sqlite":
        # Stored by key (WITHOUT ROWID): the file lists them shuffled too. PostgreSQL lists
        # them where they were appended (votes.models.SealedBallot says so).
        assert [receipt_in(row) for row in stored] != in_casting_order

    # No time: not a column, and not in the token (Fernet's carry one in clear).
    cast_at = [int(db.utc(row["cast_at"]).timestamp()) for row in roll]
    moments = {second + shift for second in cast_at for shift in range(-5, 6)}
    for row in stored:
        assert row["sealed"].startswith(crypto.AEAD_PREFIX)
        token = base64.urlsafe_b64decode(row["sealed"].removeprefix(crypto.AEAD_PREFIX))
        for moment in moments:
            assert moment.to_bytes(8, "big") not in token
            assert moment.to_bytes(4, "big") not in token


async def test_a_tablet_ballot_stored_just_before_the_database_fails_is_acknowledged(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the shared tablet, the tablet's release and the journal are written with the ballot:
    nothing is left to fail after the commit, and the thank-you screen shows the receipt."""
    room = await build_room(client)
    vote = room.vote_id
    await start_tablet(client, room)
    handover = await hand_tablet(client, room, "Karim")
    token = await csrf_token(client)
    with database_fails_after_casting(monkeypatch) as state:
        sent = await client.post(
            f"/votes/{vote}/tablet/ballot",
            data={"choice": "yes", "handover": handover, "_csrf_token": token},
        )
    assert state["down"]
    assert sent.status_code == 303, sent.text[-2000:]
    assert sent.headers["location"] == f"/votes/{vote}/tablet/done"
    done = await client.get(f"/votes/{vote}/tablet/done")
    assert done.status_code == 200
    receipt_of(done)
    assert await SealedBallot.count() == 1
    journal = await AuditEntry.count().where(AuditEntry.action == "vote.cast_on_tablet")
    assert journal == 1
    released = await Tablet.select(Tablet.person, Tablet.handover).first()
    assert released == {"person": "", "handover": ""}
