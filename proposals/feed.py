"""A table's proposals a page at a time for the open-data API (issue 17), by keyset.

Each page starts after the last row of the page before it, by the list's own order: newest
first by (created_at, id), or by supports then (created_at, id). The cursor carries that row's
sort key, not an offset, so proposals added while a client pages through never move the rows
it has still to read: newest first, a new proposal comes before every cursor and is never
listed then, and no proposal is skipped or repeated (created_at and id never change).
Ordered by supports, a proposal whose supports change while a client pages through may be
skipped or listed twice: supports are what that order is about.

The filters and the order are the list page's own (proposals.services: `_listed`,
`_ordered`), so the API and the page always agree.

A cursor is opaque: the sort key and the order it was made for, base64url-encoded and signed
with the site's key (HMAC-SHA256), so a cursor changed by hand is refused, not read as some
other position.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.query import WhereRaw
from piccolo.query.functions.aggregate import Count

from proposals.models import Comment, Proposal
from proposals.services import Filters, _listed, _ordered
from voix import db
from voix.settings import get_settings

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# A cursor is about 90 characters; anything much longer was not made here.
CURSOR_MAX = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIGNATURE_BYTES = 16
_VERSION = 1

COLUMNS = (
    Proposal.id,
    Proposal.title,
    Proposal.body,
    Proposal.theme,
    Proposal.language,
    Proposal.status,
    Proposal.created_at,
    Proposal.supports,
    Proposal.latitude,
    Proposal.longitude,
    Proposal.district.slug.as_alias("district"),
    Proposal.district.name.as_alias("district_name"),
)


class BadCursor(ValueError):
    """The cursor was not made by this site for this order, or was changed."""


@dataclass(frozen=True)
class Position:
    """Where a page ended: the sort key of its last row."""

    sort: str
    created_at: datetime
    id: int
    supports: int = 0


@dataclass(frozen=True)
class Feed:
    items: list[dict[str, Any]]
    after: Position | None  # where the next page starts; None at the end


def _key() -> bytes:
    return hmac.new(get_settings().secret_key, b"api-cursor", hashlib.sha256).digest()


def _sign(payload: bytes) -> bytes:
    return hmac.new(_key(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _microseconds(moment: datetime) -> int:
    return (db.utc(moment) - _EPOCH) // timedelta(microseconds=1)


def encode_cursor(position: Position) -> str:
    values = [
        _VERSION,
        position.sort,
        _microseconds(position.created_at),
        position.id,
        position.supports,
    ]
    payload = json.dumps(values, separators=(",", ":")).encode()
    return _b64(payload) + "." + _b64(_sign(payload))


def decode_cursor(cursor: str, sort: str) -> Position:
    """The position a cursor of ours stands for, for pages in `sort` order; BadCursor if it is
    not one of ours, was changed, or was made for another order."""
    if len(cursor) > CURSOR_MAX or not cursor.isascii():
        raise BadCursor(cursor)
    encoded, _, signature = cursor.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError) as problem:
        raise BadCursor(cursor) from problem
    if not hmac.compare_digest(given, _sign(payload)):
        raise BadCursor(cursor)
    try:
        version, made_for, microseconds, proposal_id, supports = json.loads(payload)
        created_at = _EPOCH + timedelta(microseconds=microseconds)
    except (ValueError, TypeError, OverflowError) as problem:
        raise BadCursor(cursor) from problem
    if version != _VERSION or made_for != sort:
        raise BadCursor(cursor)
    if not all(type(n) is int for n in (proposal_id, supports)):  # not bool, not float
        raise BadCursor(cursor)
    return Position(sort, created_at, proposal_id, supports)


def _after(position: Position) -> WhereRaw:
    """The rows after `position` in the list's order (all descending): a row value comparison,
    which both engines answer from the partial indexes of the list's orders."""
    if position.sort == "supports":
        return WhereRaw(
            "((proposal.supports, proposal.created_at, proposal.id) < ({}, {}, {}))",
            position.supports,
            position.created_at,
            position.id,
        )
    return WhereRaw(
        "((proposal.created_at, proposal.id) < ({}, {}))", position.created_at, position.id
    )


@db.planned_for_values
async def page(
    table_id: int, filters: Filters, after: Position | None, limit: int = DEFAULT_LIMIT
) -> Feed:
    """Up to `limit` of the table's listed proposals after `after`, as the list page filters
    and orders them, each with its count of visible comments. Two queries, whatever the page."""
    condition = _listed(table_id, filters)
    if after is not None:
        condition &= _after(after)
    rows = await _ordered(Proposal.select(*COLUMNS).where(condition), filters).limit(limit + 1)
    items, more = rows[:limit], len(rows) > limit
    counts = await comment_counts([row["id"] for row in items])
    for row in items:
        row["comments_count"] = counts[row["id"]]
    if not more:
        return Feed(items, None)
    last = items[-1]
    return Feed(
        items, Position(filters.sort, db.utc(last["created_at"]), last["id"], last["supports"])
    )


async def comment_counts(proposal_ids: list[int]) -> dict[int, int]:
    """How many comments each proposal shows (those hidden by the facilitators are not)."""
    counts = dict.fromkeys(proposal_ids, 0)
    if proposal_ids:
        rows = await (
            Comment.select(Comment.proposal, Count(Comment.id).as_alias("n"))
            .where(Comment.proposal.is_in(proposal_ids) & Comment.hidden_at.is_null())
            .group_by(Comment.proposal)
        )
        counts.update({row["proposal"]: row["n"] for row in rows})
    return counts
