"""A brief's draft: created, edited by the table's facilitators, listed for them.

Publishing freezes the draft as a numbered version (exports.services.publish_version); until
then nothing here is public. What may go into a draft is checked here and again when a version
is built (exports.snapshot): a photo whose author did not consent is never offered, never saved,
never printed, and a resident is named as a signatory only with their consent recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException
from unidecode import unidecode

from audit import services as audit
from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory
from exports.snapshot import SENDABLE
from proposals import services as proposals
from proposals.models import PHOTO, Media, Proposal
from tables.models import Institution, Table
from tables.services import residents, scope_of
from voix import db
from voix.db import utc
from voix.forms import REQUIRED, UNKNOWN_CHOICE, Form, FormErrors, Message, ascii_slug, parse_int
from voix.i18n import LANGUAGES, N_
from voix.permissions import Principal, require

# A second click on "Create" within this time returns the draft the first one made.
RESUBMISSION_WINDOW = timedelta(minutes=10)
TITLE_MAX = 160
CONTEXT_MAX = 8000
NAME_MAX = 160
POSITION_MAX = 999
SLUG_BASE_MAX = 60
ADDRESSED_TO_MAX = 160  # Brief.addressed_to's length

STALE = N_(
    "Another facilitator changed this draft while you were editing it, so your changes were not "
    "saved. Open the draft again to see theirs; what you wrote is still below, to copy."
)
PHOTO_NOT_CONSENTED = N_(
    "The author has not agreed to this photo being printed: choose another one, or none."
)
NO_SIGNATORY_CONSENT = N_(
    "Please confirm that this person agreed to be named in this document: nobody is named "
    "without their agreement."
)
NOT_SENDABLE = N_(
    "One of the proposals chosen can no longer be sent (hidden, or its status changed). "
    "Reload the page and choose again."
)
AUTHOR_AGREED_MISSING = N_("Please confirm that the author agreed to it.")


def slugify(text: str) -> str:
    """The brief's address from its title, readable whatever the script: Arabic, Cyrillic or
    Chinese are transliterated to Latin letters (Unidecode), accents dropped. Empty when nothing
    is left (a title of emoji): the caller then numbers the brief."""
    return ascii_slug(unidecode(text))[:SLUG_BASE_MAX].strip("-")


async def _free_slug(base: str) -> str:
    taken = {
        row["slug"] for row in await Brief.select(Brief.slug).where(Brief.slug.like(f"{base}%"))
    }
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


async def _lock_table(table_id: int) -> None:
    """Inside a write transaction: the table's row lock on PostgreSQL (SQLite's write
    transaction is already alone), so that two requests creating the same draft run one after
    the other and the second sees the first's row."""
    await Table.update({Table.answer_delay_months: Table.answer_delay_months}).where(
        Table.id == table_id
    )


async def create_draft(who: Principal, table: dict[str, Any], data: Mapping[str, Any]) -> str:
    """A new draft with the table's adopted proposals in their order and no addressee; returns
    its slug. A second click of the same form within a few minutes returns the same draft."""
    scope = scope_of(table)
    require(who, "briefs.manage", scope)
    form = Form(data)
    title = form.text("title", max_length=TITLE_MAX, min_length=3)
    language = form.choice("language", LANGUAGES)
    form.validate()
    adopted = await proposals.list_adopted(table["id"])
    async with db.write_transaction():
        await _lock_table(table["id"])
        now = datetime.now(UTC)
        same = await (
            Brief.select(Brief.slug)
            .where(
                (Brief.table == table["id"])
                & (Brief.title == title)
                & (Brief.language == language)
                & (Brief.created_by == who.user_id)
                & (Brief.version == 0)
                & (Brief.created_at > now - RESUBMISSION_WINDOW)
            )
            .first()
        )
        if same:
            return str(same["slug"])
        base = slugify(title)
        brief_id, slug = None, ""
        while brief_id is None:  # a slug taken meanwhile by another request: take the next one
            # Nothing readable left: a unique placeholder, numbered by the id once it is known.
            slug = await _free_slug(base) if base else f"new-{secrets.token_hex(8)}"
            inserted = (
                await Brief.insert(
                    Brief(
                        slug=slug,
                        table=table["id"],
                        title=title,
                        language=language,
                        addressed_to="",
                        introduction="",
                        created_by=who.user_id,
                        published_at=now,
                        created_at=now,
                        updated_at=now,
                        version=0,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .returning(Brief.id)
            )
            brief_id = inserted[0]["id"] if inserted else None
        if not base:
            slug = await _free_slug(f"note-{brief_id}")
            await Brief.update({Brief.slug: slug}).where(Brief.id == brief_id)
        if adopted:
            await BriefItem.insert(
                *[
                    BriefItem(brief=brief_id, proposal=proposal["id"], position=position)
                    for position, proposal in enumerate(adopted, start=1)
                ]
            )
        await audit.record(who, "brief.draft_created", scope, subject=f"brief:{slug}")
    return slug


async def get_draft(slug: str) -> dict[str, Any]:
    brief = await Brief.select().where(Brief.slug == slug).first()
    if brief is None:
        raise NotFoundException()
    return brief


def stamp(moment: datetime) -> str:
    """The draft's `updated_at` as the edit form carries it back (optimistic concurrency)."""
    return utc(moment).isoformat()


async def drafts_for_table(table_id: int) -> list[dict[str, Any]]:
    """The table's drafts never published, for its facilitators (the published ones are listed
    to everyone by exports.services.for_table)."""
    return await (
        Brief.select(Brief.id, Brief.slug, Brief.title, Brief.language, Brief.updated_at)
        .where((Brief.table == table_id) & (Brief.version == 0))
        .order_by(Brief.updated_at, ascending=False)
    )


# What the edit page offers.


async def sendable_proposals(table_id: int) -> list[dict[str, Any]]:
    """The table's proposals a brief may carry (snapshot.SENDABLE, never a hidden one), each
    with its photos: `photos` those its author agreed to see printed, `unconsented` the others."""
    rows = await (
        Proposal.select(
            Proposal.id,
            Proposal.title,
            Proposal.theme,
            Proposal.language,
            Proposal.status,
            Proposal.created_at,
        )
        .where(
            (Proposal.table == table_id)
            & Proposal.status.is_in(list(SENDABLE))
            & Proposal.hidden_at.is_null()
        )
        .order_by(Proposal.created_at)
        .order_by(Proposal.id)
    )
    by_id = {row["id"]: {**row, "photos": [], "unconsented": []} for row in rows}
    if by_id:
        for media in await (
            Media.select(Media.id, Media.proposal, Media.token, Media.publication_consent_at)
            .where(Media.proposal.is_in(list(by_id)) & (Media.kind == PHOTO))
            .order_by(Media.id)
        ):
            key = "photos" if media["publication_consent_at"] else "unconsented"
            by_id[media["proposal"]][key].append(media)
    return list(by_id.values())


async def institutions_of(organisation_id: int) -> list[dict[str, Any]]:
    return await (
        Institution.select(Institution.id, Institution.name, Institution.service)
        .where((Institution.organisation == organisation_id) & Institution.archived_at.is_null())
        .order_by(Institution.name)
        .order_by(Institution.service)
    )


async def signatories_of(brief_id: int) -> list[dict[str, Any]]:
    return await (
        BriefSignatory.select(
            BriefSignatory.id,
            BriefSignatory.name,
            BriefSignatory.capacity,
            BriefSignatory.user,
            BriefSignatory.consent_at,
            BriefSignatory.consent_recorded_by.display_name.as_alias("recorded_by_name"),
        )
        .where(BriefSignatory.brief == brief_id)
        .order_by(BriefSignatory.position)
        .order_by(BriefSignatory.id)
    )


async def saved_state(brief: dict[str, Any]) -> dict[str, Any]:
    """The draft as its edit form shows it, in the shape `read_state` reads a submitted form."""
    items = await (
        BriefItem.select(BriefItem.proposal, BriefItem.position, BriefItem.photo)
        .where(BriefItem.brief == brief["id"])
        .order_by(BriefItem.position)
        .order_by(BriefItem.id)
    )
    addressees = await (
        BriefAddressee.select(BriefAddressee.institution)
        .where(BriefAddressee.brief == brief["id"])
        .order_by(BriefAddressee.position)
        .order_by(BriefAddressee.id)
    )
    return {
        "title": brief["title"],
        "language": brief["language"],
        "introduction": brief["introduction"],
        "show_participation": brief["show_participation"],
        "show_votes": brief["show_votes"],
        "updated_at": stamp(brief["updated_at"]),
        "addressees": [row["institution"] for row in addressees],
        "items": {
            row["proposal"]: {"position": str(n), "photo": row["photo"]}
            for n, row in enumerate(items, start=1)
        },
        "remove": [],
        "org_name": "",
        "org_capacity": "",
        "resident": None,
        "resident_capacity": "",
        "resident_consent": False,
    }


def _ids(raw: Any) -> list[int]:
    """Checkbox values as ids, in the order sent, each once; what is not an id is dropped
    here and refused by the caller (it is not one of the ids offered)."""
    values = raw if isinstance(raw, list) else [raw] if raw else []
    seen: list[int] = []
    for value in values:
        number = parse_int(value, min=1)
        if number is None:
            seen.append(0)
        elif number not in seen:
            seen.append(number)
    return seen


def submitted_state(data: Mapping[str, Any]) -> dict[str, Any]:
    """A refused form's values, to show the page again as it was sent."""
    included = _ids(data.get("include"))
    return {
        "title": data.get("title") or "",
        "language": data.get("language") or "",
        "introduction": data.get("introduction") or "",
        "show_participation": data.get("show_participation") == "yes",
        "show_votes": data.get("show_votes") == "yes",
        "updated_at": data.get("updated_at") or "",
        "addressees": _ids(data.get("addressee")),
        "items": {
            proposal_id: {
                "position": data.get(f"position-{proposal_id}") or "",
                "photo": parse_int(data.get(f"photo-{proposal_id}"), min=1),
            }
            for proposal_id in included
        },
        "remove": _ids(data.get("remove")),
        "org_name": data.get("org_name") or "",
        "org_capacity": data.get("org_capacity") or "",
        "resident": parse_int(data.get("resident"), min=1),
        "resident_capacity": data.get("resident_capacity") or "",
        "resident_consent": data.get("resident_consent") == "yes",
    }


def _addressed_to(names: list[str]) -> str:
    text = ", ".join(names)
    return text if len(text) <= ADDRESSED_TO_MAX else text[: ADDRESSED_TO_MAX - 1] + "…"


@dataclass
class _Edit:
    """The edit form, read and checked: what `save` writes."""

    fields: dict[Any, Any]  # Brief columns → values
    addressees: list[int]
    items: list[tuple[int, int, int, int | None]]  # position, order sent, proposal, photo
    removed: list[int]
    organisation: tuple[str, str] | None  # a signatory added: name, capacity
    resident: tuple[int, str, str] | None  # a resident signatory added: user, name, capacity


def _read_items(
    form: Form, data: Mapping[str, Any], offered: dict[int, dict[str, Any]]
) -> list[tuple[int, int, int, int | None]]:
    included = _ids(data.get("include"))
    if any(proposal_id not in offered for proposal_id in included):
        form.error("include", NOT_SENDABLE)
    items = []
    for order, proposal_id in enumerate(included):
        if proposal_id not in offered:
            continue
        # No number: after those numbered, in the page's order.
        position = form.integer(
            f"position-{proposal_id}", required=False, min=1, max=POSITION_MAX, typed=True
        )
        photo = None
        if raw_photo := data.get(f"photo-{proposal_id}"):
            photo = parse_int(raw_photo, min=1)
            consented = {media["id"] for media in offered[proposal_id]["photos"]}
            if photo not in consented:  # forged, or consent withdrawn since the page was loaded
                form.error(f"photo-{proposal_id}", PHOTO_NOT_CONSENTED)
        items.append((position or POSITION_MAX + 1, order, proposal_id, photo))
    return sorted(items)


async def _read_edit(table: dict[str, Any], data: Mapping[str, Any]) -> _Edit:
    form = Form(data)
    title = form.text("title", max_length=TITLE_MAX, min_length=3)
    language = form.choice("language", LANGUAGES)
    introduction = form.text("introduction", max_length=CONTEXT_MAX, required=False, multiline=True)
    institutions = {row["id"]: row for row in await institutions_of(table["organisation"])}
    addressees = _ids(data.get("addressee"))
    if any(institution_id not in institutions for institution_id in addressees):
        form.error("addressee", UNKNOWN_CHOICE)
    items = _read_items(
        form, data, {row["id"]: row for row in await sendable_proposals(table["id"])}
    )
    # Signatories: those kept, one organisation and one resident added per save.
    org_name = form.text("org_name", max_length=NAME_MAX, required=False)
    org_capacity = form.text("org_capacity", max_length=NAME_MAX, required=False)
    if org_capacity and not org_name:
        form.error("org_name", REQUIRED)
    resident = form.integer("resident", required=False)
    resident_capacity = form.text("resident_capacity", max_length=NAME_MAX, required=False)
    members = {row["id"]: row for row in await residents(table["id"])}
    if resident is not None and resident not in members:
        form.error("resident", UNKNOWN_CHOICE)
    if resident is not None and data.get("resident_consent") != "yes":
        form.error("resident_consent", NO_SIGNATORY_CONSENT)
    form.validate()
    return _Edit(
        fields={
            Brief.title: title,
            Brief.language: language,
            Brief.introduction: introduction,
            Brief.show_participation: data.get("show_participation") == "yes",
            Brief.show_votes: data.get("show_votes") == "yes",
            Brief.addressed_to: _addressed_to([institutions[i]["name"] for i in addressees]),
        },
        addressees=addressees,
        items=items,
        removed=_ids(data.get("remove")),
        organisation=(org_name, org_capacity) if org_name else None,
        resident=(resident, members[resident]["display_name"], resident_capacity)
        if resident is not None
        else None,
    )


async def _signatories(who: Principal, brief_id: int, edit: _Edit, now: datetime) -> None:
    """Removes those ticked, adds the new ones after those kept (their consent as recorded)."""
    if edit.removed:
        await BriefSignatory.delete().where(
            (BriefSignatory.brief == brief_id) & BriefSignatory.id.is_in(edit.removed)
        )
    kept = await BriefSignatory.select(BriefSignatory.position).where(
        BriefSignatory.brief == brief_id
    )
    position = max((row["position"] for row in kept), default=0)
    added = []
    if edit.organisation:
        name, capacity = edit.organisation
        position += 1
        added.append(
            BriefSignatory(brief=brief_id, position=position, name=name, capacity=capacity)
        )
    if edit.resident:
        user_id, name, capacity = edit.resident
        position += 1
        added.append(
            BriefSignatory(
                brief=brief_id,
                position=position,
                name=name,
                capacity=capacity,
                user=user_id,
                consent_recorded_by=who.user_id,
                consent_at=now,
            )
        )
    if added:
        await BriefSignatory.insert(*added)


async def save(
    who: Principal, brief: dict[str, Any], table: dict[str, Any], data: Mapping[str, Any]
) -> None:
    """Saves the whole edit form: the draft's fields, and its items, addressees and signatories
    replaced in one write transaction. Refused (FormErrors, nothing changed) on bad input, or
    when another facilitator saved the draft since this form was loaded (`updated_at`)."""
    scope = scope_of(table)
    require(who, "briefs.manage", scope)
    edit = await _read_edit(table, data)
    brief_id = brief["id"]
    async with db.write_transaction():
        # The draft's row lock on PostgreSQL: two saves of one draft run one after the other.
        await Brief.update({Brief.version: Brief.version}).where(Brief.id == brief_id)
        current = await Brief.select(Brief.updated_at).where(Brief.id == brief_id).first()
        if current is None or stamp(current["updated_at"]) != data.get("updated_at"):
            raise FormErrors({"updated_at": Message(STALE)})
        now = datetime.now(UTC)
        await Brief.update({**edit.fields, Brief.updated_at: now}).where(Brief.id == brief_id)
        await BriefItem.delete().where(BriefItem.brief == brief_id)
        if edit.items:
            await BriefItem.insert(
                *[
                    BriefItem(brief=brief_id, proposal=proposal_id, position=n, photo=photo)
                    for n, (_, _, proposal_id, photo) in enumerate(edit.items, start=1)
                ]
            )
        await BriefAddressee.delete().where(BriefAddressee.brief == brief_id)
        if edit.addressees:
            await BriefAddressee.insert(
                *[
                    BriefAddressee(brief=brief_id, institution=institution_id, position=n)
                    for n, institution_id in enumerate(edit.addressees, start=1)
                ]
            )
        await _signatories(who, brief_id, edit, now)
        details = {"signatory_consent": edit.resident[0]} if edit.resident else {}
        await audit.record(
            who, "brief.draft_saved", scope, subject=f"brief:{brief['slug']}", **details
        )


# A photo's publication in documents for institutions.


async def set_photo_consent(
    who: Principal,
    proposal: dict[str, Any],
    table: dict[str, Any],
    media_id: int,
    data: Mapping[str, Any],
) -> None:
    """The author allows (or withdraws) the printing of their proposal's photo in documents
    for institutions; a facilitator may record it for them, saying the author agreed."""
    scope = scope_of(table)
    written_by = await Proposal.select(Proposal.author).where(Proposal.id == proposal["id"])
    author = who.authenticated and bool(written_by) and who.user_id == written_by[0]["author"]
    if not author:
        require(who, "briefs.manage", scope)
    found = await (
        Media.select(Media.id)
        .where((Media.id == media_id) & (Media.proposal == proposal["id"]) & (Media.kind == PHOTO))
        .first()
    )
    if found is None:
        raise NotFoundException()
    allow = data.get("action") == "allow"
    if allow and not author and data.get("author_agreed") != "yes":
        raise FormErrors({"publication.author_agreed": Message(AUTHOR_AGREED_MISSING)})
    async with db.write_transaction():
        await Media.update(
            {
                Media.publication_consent_at: datetime.now(UTC) if allow else None,
                Media.publication_consent_recorded_by: None if author or not allow else who.user_id,
            }
        ).where(Media.id == media_id)
        if not allow:  # drafts stop choosing it (published versions are frozen: snapshot)
            await BriefItem.update({BriefItem.photo: None}).where(BriefItem.photo == media_id)
        await audit.record(
            who,
            "photo.publication_allowed" if allow else "photo.publication_withdrawn",
            scope,
            subject=f"proposal:{proposal['id']}",
            media=media_id,
            on_behalf=not author,
        )
