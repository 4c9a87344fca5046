"""Proposals: submitting them, directly or on a resident's behalf, and reading them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar.exceptions import NotFoundException

from proposals.models import ADOPTED, MERGED, SUBMITTED, Proposal
from proposals.themes import THEMES
from tables.services import NOT_A_MEMBER, get_table_by_id, is_member, scope_of
from voix.forms import Form
from voix.i18n import LANGUAGES, current_language
from voix.permissions import Principal, can, require

TITLE_MAX = 140
BODY_MAX = 4000
PAGE_SIZE = 20

_COLUMNS = (
    Proposal.id,
    Proposal.table,
    Proposal.title,
    Proposal.body,
    Proposal.theme,
    Proposal.language,
    Proposal.status,
    Proposal.created_at,
    Proposal.hidden_at,
    Proposal.hidden_reason,
    Proposal.merged_into,
    Proposal.author.display_name.as_alias("author_name"),
    Proposal.recorded_by.display_name.as_alias("recorded_by_name"),
)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    number: int
    total: int
    size: int

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.count else None


def page_number(raw: str | None) -> int:
    """A page number from a query string; anything odd is the first page."""
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 100_000 else 1


async def list_for_table(
    table_id: int, theme: str | None = None, page: int | None = None, size: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """Newest first; all of them, or one page."""
    query = Proposal.select(*_COLUMNS).where(_filter(table_id, theme))
    query = query.order_by(Proposal.created_at, ascending=False).order_by(
        Proposal.id, ascending=False
    )
    if page is not None:
        query = query.limit(size).offset((page - 1) * size)
    return await query


async def page_for_table(table_id: int, theme: str | None, number: int) -> Page:
    total = await Proposal.count().where(_filter(table_id, theme))
    return Page(await list_for_table(table_id, theme, number), number, total, PAGE_SIZE)


def _filter(table_id: int, theme: str | None) -> Any:
    """What lists show: neither hidden proposals nor merged duplicates."""
    condition = (
        (Proposal.table == table_id) & Proposal.hidden_at.is_null() & (Proposal.status != MERGED)
    )
    return condition & (Proposal.theme == theme) if theme else condition


async def get(proposal_id: int) -> dict[str, Any]:
    proposal = await Proposal.select(*_COLUMNS).where(Proposal.id == proposal_id).first()
    if proposal is None:
        raise NotFoundException()
    return proposal


async def get_with_table(proposal_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The proposal and the table it belongs to: what every permission check needs."""
    proposal = await get(proposal_id)
    return proposal, await get_table_by_id(proposal["table"])


async def list_adopted(table_id: int) -> list[dict[str, Any]]:
    return await (
        Proposal.select(*_COLUMNS)
        .where((Proposal.table == table_id) & (Proposal.status == ADOPTED))
        .order_by(Proposal.created_at)
    )


async def create(who: Principal, table: dict[str, Any], data: Mapping[str, Any]) -> int:
    """A resident proposes; a facilitator may record it for someone (author field)."""
    scope = scope_of(table)
    on_behalf = can(who, "proposals.create_on_behalf", scope)
    if not on_behalf:
        require(who, "proposals.create", scope)
    form = Form(data)
    title = form.text("title", max_length=TITLE_MAX, min_length=5)
    body = form.text("body", max_length=BODY_MAX, min_length=10, multiline=True)
    theme = form.choice("theme", THEMES)
    language = form.choice("language", LANGUAGES, required=False) or current_language.get()
    author: int | None = who.user_id
    recorded_by: int | None = None
    if on_behalf and "author" in data:
        # Blank: a resident with no account; otherwise a member of this very table.
        author = form.integer("author", required=False)
        recorded_by = who.user_id
        if author is not None and not await is_member(author, table["id"]):
            form.error("author", NOT_A_MEMBER)
    form.validate()
    inserted = await Proposal.insert(
        Proposal(
            table=table["id"],
            title=title,
            body=body,
            theme=theme,
            language=language,
            status=SUBMITTED,
            author=author,
            recorded_by=recorded_by,
        )
    ).returning(Proposal.id)
    return int(inserted[0]["id"])


async def merge_candidates(proposal: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a duplicate may be merged: the table's other proposals still listed, newest first."""
    return await (
        Proposal.select(Proposal.id, Proposal.title)
        .where(_filter(proposal["table"], None) & (Proposal.id != proposal["id"]))
        .order_by(Proposal.created_at, ascending=False)
        .limit(200)
    )
