"""Ballots sealed while their vote is open, opened all together when it closes.

Top-level functions: closing a vote of 100,000 ballots opens them in worker processes
(voix.workers), a chunk at a time, so the event loop only waits.
"""

from __future__ import annotations

import json

from voix import crypto

PURPOSE = "ballot"
Marks = list[tuple[int, int]]


def seal(vote_id: int, receipt: str, marks: Marks) -> str:
    """AES-GCM (voix.crypto.seal), which writes no time in clear: a token stamped with the time
    it was sealed could be matched with the time of the participation written beside it, by
    anyone who reads what the database left behind (Fernet stamps one; tokens from before were
    stamped 0). Bound to its vote: a token copied to another vote's rows does not open there."""
    return crypto.seal(json.dumps({"receipt": receipt, "marks": marks}), PURPOSE, str(vote_id))


def open_seals(
    vote_id: int, tokens: list[str], positions: dict[int, int], only_option: int | None = None
) -> list[tuple[str, str]]:
    """Receipts and marks of sealed ballots, the marks as a ballot stores them: a JSON array
    with the grade given to each option, by the option's position, null where none was.

    Ballots sealed before votes had options carry a yes/no/abstain `choice`; they are marks
    on the vote's only option. Fernet tokens, sealed before AES-GCM, still open: a vote may be
    open while the server is upgraded.
    """
    width = max(positions.values(), default=-1) + 1
    opened = []
    for token in tokens:
        ballot = json.loads(crypto.unseal(token, PURPOSE, str(vote_id)))
        marks: list[int | None] = [None] * width
        if "choice" in ballot and only_option is not None:
            marks[positions[only_option]] = ("yes", "no", "abstain").index(ballot["choice"])
        else:
            for option, grade in ballot["marks"]:
                marks[positions[int(option)]] = int(grade)
        opened.append((ballot["receipt"], json.dumps(marks, separators=(",", ":"))))
    return opened
