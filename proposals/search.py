"""Searching a table's proposals in a way that stays fast as they grow (issue 15).

`condition(q)` has the contract of `proposals.services._search(q)`: a condition on `proposal`
for `.where(...)`, which the lists AND with their filters. What it matches:

- PostgreSQL: French stemmed words of the title and the text (the stored `search` tsvector,
  GIN-indexed), or a part of a word of the title (`ILIKE`, case folded), through a trigram GIN
  index (`proposal_title_trgm_idx`, pg_trgm). With both sides indexed the planner reads a
  BitmapOr of the two indexes instead of every row of the table. A query of fewer than three
  characters has no trigram to look up: the same matches (`lower(title) LIKE lower(…)`), which
  PostgreSQL answers by scanning the table's listed proposals.
- SQLite: a part of a word of the title or the text, case folded (also beyond ASCII: « école »
  finds « ÉCOLE », which LIKE does not), through the FTS5 trigram index `proposal_fts`, which
  triggers keep in step with `proposal`. Fewer than three characters: LIKE, as before (FTS5's
  trigrams cannot match them).

Whatever the reader types matches itself: LIKE's `%`, `_` and `\\` are escaped, and the FTS5
query is one quoted phrase, so its own syntax (AND, OR, NEAR, `*`, `"`) is only text.
"""

from __future__ import annotations

from typing import Any

from piccolo.query import WhereRaw

from proposals.models import Proposal
from voix.db import Postgres, engine

# Shorter than a trigram: no index can look it up.
INDEXED_LENGTH = 3
# The WHERE of the partial indexes (migration 2026-11-30T19:30:00:000001), word for word.
LISTED_SQL = "proposal.hidden_at IS NULL AND proposal.status <> 'merged'"


def listed() -> WhereRaw:
    """What lists show (neither hidden nor merged), written as the partial indexes' own
    predicate. `Proposal.status != MERGED` sends 'merged' as a bound parameter, which a plan
    made before the value is known cannot match against an index's WHERE: PostgreSQL's generic
    plan of a prepared statement (asyncpg caches them), SQLite's first plan (it plans again
    once the value is bound). The literal lets every plan use proposal_listed_recent_idx,
    proposal_listed_supports_idx and proposal_placed_idx."""
    return WhereRaw(f"({LISTED_SQL})")


def like_pattern(q: str) -> str:
    """`%q%`, the reader's wildcards made literal (backslash: the escape of both engines here)."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def fts_phrase(q: str) -> str:
    """One FTS5 phrase: the text between double quotes, its own quotes doubled."""
    return '"' + q.replace('"', '""') + '"'


def condition(q: str) -> WhereRaw:
    """Proposals whose title or text holds `q` (see the module's docstring for what matches)."""
    if isinstance(engine(), Postgres):
        # Backslash is PostgreSQL's default LIKE escape: no ESCAPE clause needed. A short query
        # gets SQL of its own, which the trigram index cannot serve: asyncpg caches prepared
        # statements, and a generic plan made for long patterns would read the whole trigram
        # index for a short one (1 s at 100,000 proposals, against a 0.3 s scan).
        title = (
            "proposal.title ILIKE {}"
            if len(q) >= INDEXED_LENGTH
            else "lower(proposal.title) LIKE lower({})"
        )
        return WhereRaw(
            f"(proposal.search @@ plainto_tsquery('french', {{}}) OR {title})",
            q,
            like_pattern(q),
        )
    if len(q) >= INDEXED_LENGTH:
        return WhereRaw(
            "proposal.id IN (SELECT rowid FROM proposal_fts WHERE proposal_fts MATCH {})",
            fts_phrase(q),
        )
    pattern = like_pattern(q)
    return WhereRaw(
        "(proposal.title LIKE {} ESCAPE '\\' OR proposal.body LIKE {} ESCAPE '\\')",
        pattern,
        pattern,
    )


# How many pages, from the one shown, a search counts before it says "more than": counting
# every match of a common word reads all of them (50 to 100 ms at 100,000 proposals), and a
# thousand of them still 12 to 24 ms on PostgreSQL (a word in one proposal of ten: its ILIKE on
# ten thousand titles); ten pages, 200 on the first, read a fifth of that. The count moves on
# with the reader, so "next" leads on for as long as there are matches.
COUNT_PAGES = 10


def count_cap(page: int, size: int) -> int:
    """How many matches a search counts when it shows page `page` (from 1) of `size`."""
    return (page - 1 + COUNT_PAGES) * size


def by_index_order(q: str, sort: str) -> bool:
    """Whether a search reads its newest first in the order of SQLite's FTS5 index: rowids
    (proposal ids, given in the order proposals are made) from the highest down, stopping at
    the page, instead of sorting every match by date (0.2 to 0.7 ms against 50 to 70 ms at
    100,000 proposals). Proposals keep the date they were made at, so the order is the same
    but for proposals imported with an older date, which come in the order they were added."""
    return bool(q) and sort == "recent" and len(q) >= INDEXED_LENGTH and not _postgres()


def _postgres() -> bool:
    return isinstance(engine(), Postgres)


async def newest_matching(
    table_id: int, q: str, size: int, offset: int, *, theme: str, status: str, district: str
) -> tuple[list[int], int, bool]:
    """The ids of a page of the table's listed proposals matching `q`, newest first, and how
    many there are (at most count_cap(), and whether there are more): SQLite, FTS5."""
    cap = offset + COUNT_PAGES * size
    where = [
        "proposal_fts MATCH ?",
        'proposal."table" = ?',
        LISTED_SQL,
    ]
    args: list[Any] = [fts_phrase(q), table_id]
    for column, value in (("theme", theme), ("status", status)):
        if value:
            where.append(f"proposal.{column} = ?")
            args.append(value)
    if district:
        where.append("proposal.district IN (SELECT id FROM district WHERE slug = ?)")
        args.append(district)
    found = (
        "FROM proposal_fts JOIN proposal ON proposal.id = proposal_fts.rowid "
        f"WHERE {' AND '.join(where)}"
    )
    rows = await Proposal.raw(
        _braces(
            f"SELECT proposal.id AS id {found} ORDER BY proposal_fts.rowid DESC LIMIT ? OFFSET ?"
        ),
        *args,
        size,
        offset,
    )
    counted = await Proposal.raw(
        _braces(f"SELECT count(*) AS n FROM (SELECT 1 {found} LIMIT ?)"),  # noqa: S608 — constants
        *args,
        cap + 1,
    )
    total = int(counted[0]["n"])
    return [int(row["id"]) for row in rows], min(total, cap), total > cap


def _braces(sql: str) -> str:
    """piccolo's raw queries take their values at `{}`."""
    return sql.replace("?", "{}")
