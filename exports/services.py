"""Briefs: the position documents a table addresses to an institution."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException

from audit import services as audit
from exports.models import Brief, BriefItem
from maps import svg
from maps.services import districts_of
from proposals import discussion
from proposals import services as proposals
from tables.services import get_table_by_id, scope_of
from translations import services as content
from voix import db
from voix.forms import Form, UserError, ascii_slug
from voix.i18n import N_
from voix.permissions import Principal, require
from voix.web import absolute_url
from votes import box
from votes import services as votes

RESUBMISSION_WINDOW = timedelta(minutes=10)
# The brief's map on paper (exports/pdf/brief_map.svg): as large as this box allows, at most as
# wide as the text and 90 mm high; a dot's radius on it, its number inside.
MAP_BOX = (170, 90)  # mm
MAP_DOT = 3.2  # mm
NOTHING_ADOPTED = N_("The table has not adopted any proposal yet: there is nothing to send.")


@dataclass(frozen=True)
class BriefDocument:
    """Everything a brief shows, gathered in a fixed number of queries."""

    slug: str
    title: str
    addressed_to: str
    introduction: str
    published_at: datetime
    table: dict[str, Any]
    items: list[dict[str, Any]]
    map: dict[str, Any] | None = None  # where the placed proposals are (brief_map)
    votes: list[dict[str, Any]] = field(default_factory=list)  # the annex: results, ballot boxes
    id: int = 0


def slugify(text: str) -> str:
    return ascii_slug(text)[:60] or "note"


async def _free_slug(base: str) -> str:
    taken = {
        row["slug"] for row in await Brief.select(Brief.slug).where(Brief.slug.like(f"{base}%"))
    }
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


async def publish(who: Principal, table: dict[str, Any], data: dict[str, Any]) -> str:
    """Publishes a brief of every proposal the table has adopted; returns its slug."""
    require(who, "briefs.manage", scope_of(table))
    form = Form(data)
    title = form.text("title", max_length=160, min_length=5)
    addressed_to = form.text("addressed_to", max_length=160, min_length=3)
    introduction = form.text("introduction", max_length=4000, required=False, multiline=True)
    form.validate()
    adopted = await proposals.list_adopted(table["id"])
    if not adopted:
        raise UserError(NOTHING_ADOPTED)
    async with db.write_transaction():
        # A second click on "Publish" returns the brief the first one made.
        same = await (
            Brief.select(Brief.slug)
            .where(
                (Brief.table == table["id"])
                & (Brief.title == title)
                & (Brief.addressed_to == addressed_to)
                & (Brief.published_at > datetime.now(UTC) - RESUBMISSION_WINDOW)
            )
            .first()
        )
        if same:
            return str(same["slug"])
        brief_id, slug = None, ""
        while brief_id is None:  # a slug taken meanwhile by another request: take the next one
            slug = await _free_slug(slugify(title))
            inserted = (
                await Brief.insert(
                    Brief(
                        slug=slug,
                        table=table["id"],
                        title=title,
                        addressed_to=addressed_to,
                        introduction=introduction,
                        created_by=who.user_id,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .returning(Brief.id)
            )
            brief_id = inserted[0]["id"] if inserted else None
        await BriefItem.insert(
            *[
                BriefItem(brief=brief_id, proposal=proposal["id"], position=position)
                for position, proposal in enumerate(adopted, start=1)
            ]
        )
        await audit.record(who, "brief.published", scope_of(table), subject=f"brief:{slug}")
    return slug


async def for_table(table_id: int) -> list[dict[str, Any]]:
    return (
        await Brief.select(
            Brief.id, Brief.slug, Brief.title, Brief.addressed_to, Brief.published_at
        )
        .where(Brief.table == table_id)
        .order_by(Brief.published_at, ascending=False)
    )


async def load(slug: str) -> BriefDocument:
    brief = await Brief.select().where(Brief.slug == slug).first()
    if brief is None:
        raise NotFoundException()
    table = await get_table_by_id(brief["table"])
    items = await (
        BriefItem.select(
            BriefItem.proposal.id.as_alias("id"),
            BriefItem.proposal.title.as_alias("title"),
            BriefItem.proposal.body.as_alias("body"),
            BriefItem.proposal.theme.as_alias("theme"),
            BriefItem.proposal.language.as_alias("language"),
            BriefItem.proposal.created_at.as_alias("created_at"),
            BriefItem.proposal.latitude.as_alias("latitude"),
            BriefItem.proposal.longitude.as_alias("longitude"),
        )
        # A proposal hidden after the brief was published leaves it too.
        .where((BriefItem.brief == brief["id"]) & BriefItem.proposal.hidden_at.is_null())
        .order_by(BriefItem.position)
    )
    vote_rows = await votes.with_results(await votes.for_proposals([i["id"] for i in items]))
    latest: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for row in vote_rows:  # newest first: keep the latest closed vote per proposal
        for option in row["options"]:
            latest.setdefault(option["proposal"], (row, option))
    used: dict[int, dict[str, Any]] = {}
    for item in items:
        item["vote"], item["vote_option"] = latest.get(item["id"], (None, None))
        if item["vote"]:
            used[item["vote"]["id"]] = item["vote"]
    for vote in used.values():
        # The annex names each ballot box by its address and fingerprint: a later change shows.
        vote["box_sha256"] = await box.fingerprint(vote["id"])
        vote["box_url"] = absolute_url(f"/votes/{vote['id']}/ballots.json")
    return BriefDocument(
        id=brief["id"],
        slug=brief["slug"],
        title=brief["title"],
        addressed_to=brief["addressed_to"],
        introduction=brief["introduction"],
        votes=sorted(used.values(), key=lambda vote: vote["id"]),
        published_at=brief["published_at"],
        table=table,
        items=items,
        map=brief_map(
            await districts_of([table["id"]]),
            [item for item in items if item["latitude"] is not None],
        ),
    )


def brief_map(
    districts: list[dict[str, Any]], points: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The brief's map laid out for paper: dots of MAP_DOT mm fanned out where they would cover
    one another, on a map drawn in MAP_BOX."""
    return svg.layout(districts, points, dot=MAP_DOT, box=MAP_BOX)


async def localised(
    document: BriefDocument, language: str, *, original: bool = False
) -> tuple[BriefDocument, content.Shown | None]:
    """The brief as a reader of `language` reads it: its title and introduction, its proposals
    and the annex's questions where the facilitators translated them (a copy: the document
    loaded stays as written). Also what to say about it (translations.macros.notice)."""
    row = {"id": document.id, "title": document.title, "introduction": document.introduction}
    shown = (await content.apply("brief", [row], language, original=original, count=True)).get(
        document.id
    )
    # A copy of what may change, not of the whole document (a big brief is copied on the loop):
    # the items, and the annex's votes with their options, which the items point to.
    votes_copy = [dict(vote, options=[dict(o) for o in vote["options"]]) for vote in document.votes]
    by_id = {vote["id"]: vote for vote in votes_copy}
    items = []
    for loaded in document.items:
        item = dict(loaded)
        if item["vote"] is not None:
            item["vote"] = by_id[item["vote"]["id"]]
            option = item["vote_option"]
            item["vote_option"] = next(
                (o for o in item["vote"]["options"] if option and o["id"] == option["id"]), option
            )
        items.append(item)
    if not original:
        found = await discussion.translations([item["id"] for item in items], language)
        for item in items:
            if (translation := found.get(item["id"])) and item["language"] != language:
                item["title"], item["body"] = translation["title"], translation["body"]
                item["language"] = language
        await content.apply("vote", votes_copy, language)
    copy = dataclasses.replace(
        document,
        title=str(row["title"]),
        introduction=str(row["introduction"]),
        items=items,
        votes=votes_copy,
    )
    return copy, shown
