"""A closed vote's public ballot box, read from the database into `voix-ballots/1`.

The same bytes for the web (`/votes/ID/ballots.json`), `voix export ballots` and the
fingerprint shown on the results page and in briefs. Ballots are read a page at a time
(keyset pagination on a closed, unchanging vote) and encoded by votes.ballot_box in a
thread, so neither memory nor the event loop grows with the number of ballots.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, BinaryIO

from votes import ballot_box
from votes.models import CLOSED, CONTENT, Vote
from votes.scales import APPROVAL, MAJORITY_JUDGMENT, THRESHOLDS, YES_NO_ABSTAIN
from votes.services import get, grades_of, option_key, options

PAGE = 2000


def _header(vote: dict[str, Any], vote_options: list[dict[str, Any]]) -> dict[str, Any]:
    header: dict[str, Any] = {
        "title": vote["question"],
        "method": vote["method"],
        "options": [{"id": option_key(o), "label": o["label"]} for o in vote_options],
        "participants": vote["participants"] or 0,
    }
    if vote["method"] == MAJORITY_JUDGMENT:
        header["grades"] = list(grades_of(vote))
    # The rule fixed when the vote opened, so a recount says what is adopted, not only the order.
    if vote["quorum"]:
        header["quorum"] = vote["quorum"]
    if vote["method"] == YES_NO_ABSTAIN and vote["threshold"] in THRESHOLDS:
        header["threshold"] = vote["threshold"]
    if vote["method"] == MAJORITY_JUDGMENT and vote["adopt_grade"] is not None:
        header["adopt_grade"] = grades_of(vote)[vote["adopt_grade"]]
    if vote["adopt_top"]:
        header["adopt_top"] = vote["adopt_top"]
    elif vote["method"] == APPROVAL:
        header["adopt_majority"] = True
    if withdrawn := [option_key(o) for o in vote_options if o.get("hidden_at")]:
        header["withdrawn"] = withdrawn
    return header


async def _ballot_page(
    vote: dict[str, Any], keys: list[str], after: tuple[str, str] | None
) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    """The next page of ballots in the box's fixed order, each as the format writes it.

    With receipts beside their ballots the order is the receipts'; otherwise the ballots'
    random keys: nothing of the order of voting, the same every time.
    """
    by_receipt = vote["receipts_prove"] == CONTENT
    order = "receipt, id" if by_receipt else "id"
    where = "vote = {}"
    args: list[Any] = [vote["id"]]
    if after is not None:
        if by_receipt:
            where += " AND (receipt > {} OR (receipt = {} AND id > {}))"
            args += [after[0], after[0], after[1]]
        else:
            where += " AND id > {}"
            args.append(after[1])
    rows = await Vote.raw(
        f"SELECT id, receipt, marks FROM ballot WHERE {where} ORDER BY {order} LIMIT {PAGE}",  # noqa: S608
        *args,
    )
    grades = grades_of(vote)
    page = []
    for row in rows:
        marks = json.loads(row["marks"])
        choices: Any
        if vote["method"] == APPROVAL:
            choices = [keys[p] for p, grade in enumerate(marks) if grade is not None]
        else:
            choices = {keys[p]: grades[grade] for p, grade in enumerate(marks) if grade is not None}
        ballot = {"choices": choices}
        if by_receipt:
            ballot["receipt"] = row["receipt"]
        page.append(((row["receipt"], str(row["id"])), ballot))
    return page


async def _receipt_page(vote_id: int, after: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The next page of receipts, sorted; a code two ballots happened to draw is listed twice."""
    where = "vote = {}"
    args: list[Any] = [vote_id]
    if after is not None:
        where += " AND (receipt > {} OR (receipt = {} AND id > {}))"
        args += [after[0], after[0], after[1]]
    rows = await Vote.raw(
        f"SELECT receipt, id FROM ballot WHERE {where} ORDER BY receipt, id LIMIT {PAGE}",  # noqa: S608
        *args,
    )
    return [(row["receipt"], str(row["id"])) for row in rows]


class _Bridge:
    """Lets the writer, running in a thread, read pages from the loop and hand bytes back."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stopped = threading.Event()

    def call(self, coroutine: Any) -> Any:
        if self.stopped.is_set():
            coroutine.close()
            raise _Stopped
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def ballots(self, vote: dict[str, Any], keys: list[str]) -> Iterator[dict[str, Any]]:
        after = None
        while page := self.call(_ballot_page(vote, keys, after)):
            yield from (ballot for _, ballot in page)
            after = page[-1][0]

    def receipts(self, vote_id: int) -> Iterator[str]:
        after = None
        while page := self.call(_receipt_page(vote_id, after)):
            yield from (receipt for receipt, _ in page)
            after = page[-1]


class _Stopped(Exception):
    """The reader went away: the writer stops."""


async def _write(vote_id: int, out: BinaryIO | Any, bridge: _Bridge | None = None) -> str:
    vote = await get(vote_id)
    if vote["status"] != CLOSED:
        raise ValueError("a ballot box is published once its vote is closed")
    vote_options = (await options([vote_id]))[vote_id]
    keys = [option_key(o) for o in vote_options]  # by position
    bridge = bridge or _Bridge(asyncio.get_running_loop())
    receipts = None if vote["receipts_prove"] == CONTENT else bridge.receipts(vote_id)
    tallies = await _tallies(vote_options)
    return await asyncio.to_thread(
        ballot_box.write,
        out,
        _header(vote, vote_options),
        bridge.ballots(vote, keys),
        receipts,
        tallies,
    )


async def _tallies(vote_options: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The paper batches and show of hands counted in the room, added up per option; None
    (no `tallies` in the box) when the vote had none."""
    from votes.closing import room_counts  # noqa: PLC0415 (closing builds on this module's peers)

    if not vote_options:
        return None
    counts, _ = await room_counts(vote_options[0]["vote"])
    if not counts:
        return None
    return {option_key(o): counts[o["id"]] for o in vote_options if o["id"] in counts}


class _Digest:
    """A sink that only hashes: the fingerprint without keeping the file."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return len(data)

    def flush(self) -> None:
        """Nothing buffered."""


async def fingerprint(vote_id: int) -> str:
    """The SHA-256 of the vote's ballot box, computed once after closing and kept."""
    stored = await Vote.select(Vote.box_sha256, Vote.status).where(Vote.id == vote_id).first()
    if stored is None or stored["status"] != CLOSED:
        return ""
    if stored["box_sha256"]:
        return str(stored["box_sha256"])
    digest = await _write(vote_id, _Digest())
    await Vote.update({Vote.box_sha256: digest}).where(Vote.id == vote_id)
    return digest


async def export(vote_id: int, out: BinaryIO) -> str:
    """Writes the ballot box to a file (`voix export ballots`); returns its SHA-256."""
    return await _write(vote_id, out)


async def chunks(vote_id: int) -> AsyncIterator[bytes]:
    """The ballot box as a stream of bytes for an HTTP response."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    bridge = _Bridge(loop)

    class Out:
        def write(self, data: bytes) -> int:
            bridge.call(queue.put(bytes(data)))
            return len(data)

        def flush(self) -> None:
            """Every write is handed over at once."""

    async def produce() -> None:
        try:
            await _write(vote_id, Out(), bridge)
        except _Stopped:
            pass
        finally:
            await queue.put(None)

    producer = asyncio.create_task(produce())
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        await producer
    finally:
        bridge.stopped.set()
        while not producer.done():  # unblock a writer waiting on a full queue
            while not queue.empty():
                queue.get_nowait()
            await asyncio.sleep(0.01)
