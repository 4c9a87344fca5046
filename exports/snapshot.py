"""A brief's version, frozen: everything its page, PDF and DOCX show, as one JSON document.

Format "voix-brief/1" (a dict; datetimes are `datetime`, aware, in UTC, once loaded):

    format        "voix-brief/1"
    slug          the brief's address (/briefs/SLUG)
    version       its number, from 1 (0 in a draft's preview)
    published_at  when it was published (the preview: now)
    language      the language its title and context are written in ("fr", "ar", "en")
    title         str
    context       the context as written (Markdown)
    context_html  the same, through voix.richtext's sanitiser (safe to print as it is)
    url           the version's public page, absolute (VOIX_BASE_URL)
    table         {id, slug, name, postcode, organisation_name, organisation_slug,
                   districts: [{name, approximate}]}
    addressees    [{id, name, service, address, contact}]
    themes        [{theme: slug, items: [n, …]}], in the order of their first item
    items         [{n (1…, the number on the map), id, title, body, theme, language (written
                   in), supports, created_at, latitude, longitude, district (name or ""),
                   url, photo (BriefPhoto.media id or None), vote (vote id or None),
                   option (that vote's option id for this proposal, or None),
                   translations: {LANG: {title, body}} (the facilitators', at publication)}]
    map           maps.svg.layout of the placed items (dots numbered by `n`), or None
    votes         [vote rows as votes.services.with_results gives them (question, method,
                   options with their results, participants, closed_at…), plus box_sha256,
                   box_url, url, and translations: {LANG: {question, options: {ID: label}}}]
                   — [] when the draft leaves the votes out
    participation {meetings, present, attendances, votes, voters, proposals,
                   by_district: [{name, proposals}]} — counts only; None when left out
    signatories   [{name, capacity, organisation (bool)}]

`localised(document, lang, translation)` is what a reader of `lang` reads: the same shape, texts
replaced by their translations where there are some, with `notes` saying what is not.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, date, datetime
from typing import Any

from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory
from maps import svg
from maps.services import districts_of
from meetings.models import CLOSED as MEETING_CLOSED
from meetings.models import Attendance, Meeting
from proposals.models import Media, Proposal, Translation
from tables.models import Institution
from tables.services import get_table_by_id
from translations import services as content
from voix import workers
from voix.db import utc
from voix.i18n import DEFAULT_LANGUAGE, LANGUAGES
from voix.richtext import brief_context_html
from voix.web import absolute_url
from votes import box
from votes import services as votes
from votes.models import CLOSED as VOTE_CLOSED
from votes.models import Participation, Vote

FORMAT = "voix-brief/1"
# The brief's map on paper (exports/pdf/brief_map.svg): as large as this box allows, at most as
# wide as the text and 90 mm high; a dot's radius on it, its number inside.
MAP_BOX = (170, 90)  # mm
MAP_DOT = 3.2  # mm
# Proposals a brief may carry: adopted, or already on their way to an institution.
SENDABLE = ("adopted", "transmitted", "answered", "done", "refused")


def context_html(markdown: str) -> str:
    """CPU work: run it in the worker pool (voix.workers)."""
    return brief_context_html(markdown)


# JSON, with the datetimes and dates kept as such.


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": utc(value).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    raise TypeError(f"Not in a brief: {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$datetime" in obj:
            return datetime.fromisoformat(obj["$datetime"])
        if "$date" in obj:
            return date.fromisoformat(obj["$date"])
        if "$bytes" in obj:
            return base64.b64decode(obj["$bytes"])
    return obj


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, default=_encode, ensure_ascii=False, sort_keys=True)


def loads(text: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(text, object_hook=_decode)
    return result


# Gathering a draft into a document.


async def participation(table_id: int, until: datetime | None = None) -> dict[str, Any]:
    """The table's participation as of `until` (now by default), counts only: meetings held,
    people present (each once), attendances, closed votes and the people who took part in them
    (each once), proposals by district. Residents' own districts are not collected: the
    proposals' places are."""
    until = until or datetime.now(UTC)
    meetings = await Meeting.count().where(
        (Meeting.table == table_id)
        & (Meeting.status == MEETING_CLOSED)
        & (Meeting.closed_at <= until)
    )
    held = (
        (Attendance.meeting.table == table_id)
        & (Attendance.meeting.status == MEETING_CLOSED)
        & (Attendance.checked_in_at <= until)
    )
    attendances = await Attendance.count().where(held)
    present = len({row["person"] for row in await Attendance.select(Attendance.person).where(held)})
    closed = (
        (Participation.vote.table == table_id)
        & (Participation.vote.status == VOTE_CLOSED)
        & (Participation.vote.closed_at <= until)
    )
    voters = len(
        {
            row["person"] or f"user:{row['user']}"
            for row in await Participation.select(Participation.person, Participation.user).where(
                closed
            )
        }
    )
    vote_count = await Vote.count().where(
        (Vote.table == table_id) & (Vote.status == VOTE_CLOSED) & (Vote.closed_at <= until)
    )
    proposals = await Proposal.select(Proposal.district.name.as_alias("district")).where(
        (Proposal.table == table_id) & Proposal.hidden_at.is_null() & (Proposal.created_at <= until)
    )
    by_district: dict[str, int] = {}
    for row in proposals:
        if row["district"]:
            by_district[row["district"]] = by_district.get(row["district"], 0) + 1
    return {
        "meetings": meetings,
        "present": present,
        "attendances": attendances,
        "votes": vote_count,
        "voters": voters,
        "proposals": len(proposals),
        "by_district": [{"name": name, "proposals": n} for name, n in sorted(by_district.items())],
    }


async def _items(brief_id: int) -> list[dict[str, Any]]:
    rows = await (
        BriefItem.select(
            BriefItem.photo,
            BriefItem.proposal.id.as_alias("id"),
            BriefItem.proposal.title.as_alias("title"),
            BriefItem.proposal.body.as_alias("body"),
            BriefItem.proposal.theme.as_alias("theme"),
            BriefItem.proposal.language.as_alias("language"),
            BriefItem.proposal.supports.as_alias("supports"),
            BriefItem.proposal.created_at.as_alias("created_at"),
            BriefItem.proposal.latitude.as_alias("latitude"),
            BriefItem.proposal.longitude.as_alias("longitude"),
            BriefItem.proposal.district.name.as_alias("district"),  # type: ignore[union-attr]
            BriefItem.proposal.status.as_alias("status"),
        )
        # A proposal hidden by moderation, or no longer adopted, does not go out.
        .where(
            (BriefItem.brief == brief_id)
            & BriefItem.proposal.hidden_at.is_null()
            & BriefItem.proposal.status.is_in(list(SENDABLE))
        )
        .order_by(BriefItem.position)
        .order_by(BriefItem.id)
    )
    ids = [row["id"] for row in rows]
    consented: set[int] = set()
    chosen = [row["photo"] for row in rows if row["photo"]]
    if chosen:
        consented = {
            row["id"]
            for row in await Media.select(Media.id, Media.proposal).where(
                Media.id.is_in(chosen)
                & Media.proposal.is_in(ids)
                & Media.publication_consent_at.is_not_null()
            )
        }
    translated: dict[int, dict[str, dict[str, str]]] = {}
    if ids:
        for row in await Translation.select(
            Translation.proposal, Translation.language, Translation.title, Translation.body
        ).where(Translation.proposal.is_in(ids)):
            translated.setdefault(row["proposal"], {})[row["language"]] = {
                "title": row["title"],
                "body": row["body"],
            }
    # Printed grouped by theme (the themes in the order of their first proposal), and
    # numbered in that order: the numbers on the map follow the pages.
    first: dict[str, int] = {}
    for position, row in enumerate(rows):
        first.setdefault(row["theme"], position)
    rows = sorted(rows, key=lambda row: first[row["theme"]])
    items = []
    for n, row in enumerate(rows, start=1):
        items.append(
            {
                "n": n,
                "id": row["id"],
                "title": row["title"],
                "body": row["body"],
                "theme": row["theme"],
                "language": row["language"],
                "supports": row["supports"],
                "created_at": utc(row["created_at"]),
                "latitude": row["latitude"],
                "longitude": row["longitude"],
                "district": row["district"] or "",
                "url": absolute_url(f"/proposals/{row['id']}"),
                "photo": row["photo"] if row["photo"] in consented else None,
                "vote": None,
                "option": None,
                "translations": {
                    code: text
                    for code, text in translated.get(row["id"], {}).items()
                    if code != row["language"]
                },
            }
        )
    return items


async def _votes(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest closed vote on each item, with its results and ballot box (the annex)."""
    rows = await votes.with_results(await votes.for_proposals([item["id"] for item in items]))
    latest: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for row in rows:  # newest first: keep the latest closed vote per proposal
        for option in row["options"]:
            latest.setdefault(option["proposal"], (row, option))
    used: dict[int, dict[str, Any]] = {}
    for item in items:
        if found := latest.get(item["id"]):
            item["vote"], item["option"] = found[0]["id"], found[1]["id"]
            used[found[0]["id"]] = found[0]
    result = []
    for loaded in sorted(used.values(), key=lambda row: row["id"]):
        vote = {key: value for key, value in loaded.items() if _plain(value)}
        # The annex names each ballot box by its address and fingerprint: a later change shows.
        vote["box_sha256"] = await box.fingerprint(vote["id"])
        vote["box_url"] = absolute_url(f"/votes/{vote['id']}/ballots.json")
        vote["url"] = absolute_url(f"/votes/{vote['id']}")
        vote["translations"] = {}
        result.append(vote)
    # The facilitators' translations: one query per language for all the votes, not per vote.
    for code in LANGUAGES:
        copies = copy.deepcopy(result)
        shown = await content.apply("vote", copies, code)
        for vote, translated in zip(result, copies, strict=True):
            state = shown.get(vote["id"])
            if state is not None and state.state == "translated" and not state.stale:
                vote["translations"][code] = {
                    "question": translated["question"],
                    "options": {str(o["id"]): o["label"] for o in translated["options"]},
                }
    return result


def _plain(value: Any) -> bool:
    """What a vote row holds that JSON keeps (its text, numbers, times, options)."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool | datetime | date)


def themes_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order: dict[str, list[int]] = {}
    for item in items:
        order.setdefault(item["theme"], []).append(item["n"])
    return [{"theme": theme, "items": numbers} for theme, numbers in order.items()]


async def build(brief_id: int, *, version: int = 0, now: datetime | None = None) -> dict[str, Any]:
    """The draft as it would be published now, as version `version` (0: a preview)."""
    brief = await Brief.select().where(Brief.id == brief_id).first()
    if brief is None:
        raise LookupError(brief_id)
    table = await get_table_by_id(brief["table"])
    items = await _items(brief_id)
    vote_rows = await _votes(items)
    addressees = await (
        BriefAddressee.select(
            BriefAddressee.institution.id.as_alias("id"),
            BriefAddressee.institution.name.as_alias("name"),
            BriefAddressee.institution.service.as_alias("service"),
            BriefAddressee.institution.address.as_alias("address"),
            BriefAddressee.institution.contact.as_alias("contact"),
        )
        # An institution archived since the draft was saved is sent nothing.
        .where(
            (BriefAddressee.brief == brief_id) & BriefAddressee.institution.archived_at.is_null()
        )
        .order_by(BriefAddressee.position)
        .order_by(BriefAddressee.id)
    )
    signatories = await (
        BriefSignatory.select(
            BriefSignatory.name, BriefSignatory.capacity, BriefSignatory.consent_at
        )
        # A resident who erased their account since is no longer named (their consent went
        # with them); an organisation never had a consent to record.
        .where(
            (BriefSignatory.brief == brief_id)
            & (BriefSignatory.consent_at.is_null() | BriefSignatory.user.is_not_null())
        )
        .order_by(BriefSignatory.position)
        .order_by(BriefSignatory.id)
    )
    districts = await districts_of([table["id"]])
    placed = [item for item in items if item["latitude"] is not None]
    language = brief["language"] if brief["language"] in LANGUAGES else DEFAULT_LANGUAGE
    suffix = f"/v/{version}" if version else "/preview"
    return {
        "format": FORMAT,
        "slug": brief["slug"],
        "version": version,
        "published_at": now or datetime.now(UTC),
        "language": language,
        "title": brief["title"],
        "context": brief["introduction"],
        "context_html": await workers.run(context_html, brief["introduction"])
        if brief["introduction"].strip()
        else "",
        "url": absolute_url(f"/briefs/{brief['slug']}{suffix}"),
        "table": {
            "id": table["id"],
            "slug": table["slug"],
            "name": table["name"],
            "postcode": table["postcode"],
            "organisation_name": table["organisation_name"],
            "organisation_slug": table.get("organisation_slug", ""),
            "districts": [
                {"name": d["name"], "approximate": bool(d.get("approximate"))}
                for d in table.get("districts", [])
            ],
        },
        "addressees": addressees,
        "themes": themes_of(items),
        "items": items,
        "map": _plain_map(
            svg.layout(
                districts,
                [
                    {
                        "id": i["n"],
                        "theme": i["theme"],
                        "latitude": i["latitude"],
                        "longitude": i["longitude"],
                    }
                    for i in placed
                ],
                dot=MAP_DOT,
                box=MAP_BOX,
            )
        ),
        "votes": vote_rows if brief["show_votes"] else [],
        "participation": await participation(table["id"], now)
        if brief["show_participation"]
        else None,
        "signatories": [
            {"name": s["name"], "capacity": s["capacity"], "organisation": s["consent_at"] is None}
            for s in signatories
        ],
    }


def _plain_map(layout: dict[str, Any] | None) -> dict[str, Any] | None:
    return json.loads(json.dumps(layout, default=str)) if layout else None


async def institutions_of(organisation_id: int) -> list[dict[str, Any]]:
    return await (
        Institution.select()
        .where((Institution.organisation == organisation_id) & Institution.archived_at.is_null())
        .order_by(Institution.name)
    )


# Reading a document in a language.


def localised(
    document: dict[str, Any], lang: str, translation: dict[str, str] | None = None
) -> dict[str, Any]:
    """The document as a reader of `lang` reads it (a copy). `translation`: the facilitators'
    translation of this version's title and context into `lang` (translations app, kind
    "brief"), if any. Adds `notes`: {"title": language the title is shown in,
    "untranslated": [n of the items shown as written]} and, on each item and vote,
    `shown_language` (the language its text is shown in)."""
    doc = copy.deepcopy(document)
    doc["lang"] = lang
    doc["title_language"] = doc["context_language"] = doc["language"]
    if lang != doc["language"] and translation:
        if translation.get("title", "").strip():
            doc["title"] = translation["title"]
            doc["title_language"] = lang
        if translation.get("context_html", "").strip():
            doc["context_html"] = translation["context_html"]
            doc["context"] = translation.get("context", doc["context"])
            doc["context_language"] = lang
    untranslated = []
    for item in doc["items"]:
        item["shown_language"] = item["language"]
        if item["language"] != lang:
            if found := item["translations"].get(lang):
                item["title"], item["body"] = found["title"], found["body"]
                item["shown_language"] = lang
            else:
                untranslated.append(item["n"])
    for vote in doc["votes"]:
        found = vote["translations"].get(lang)
        vote["shown_language"] = lang if found else ""
        if found:
            vote["question"] = found["question"]
            for option in vote["options"]:
                option["label"] = found["options"].get(str(option["id"]), option["label"])
    doc["withheld"] = 0  # proposals hidden since publication (exports.services.read)
    doc["notes"] = {
        "title_translated": doc["title_language"] == lang,
        "written_in": doc["language"],
        "untranslated": untranslated,
    }
    return doc
