"""Briefs: publishing a draft as a frozen, numbered version, and reading the versions.

The draft is composed in exports.drafts; exports.snapshot turns it into the document a version
freezes. A version never changes once published: its page, PDFs and DOCX are made from the
JSON it stored, and its photos are copies (BriefPhoto). The facilitators' translations of its
title and context (translations app, kind "brief") belong to the version they translate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException

from audit import services as audit
from exports import snapshot
from exports.models import (
    Brief,
    BriefPhoto,
    BriefSent,
    BriefSignatory,
    BriefVersion,
    SentProposal,
    StoredPdf,
)
from exports.photos import printed_photos
from maps import svg
from proposals import discussion
from proposals.models import ADOPTED, TRANSMITTED, Media, Proposal
from tables.services import get_table_by_id, scope_of
from translations import services as content
from translations.models import ContentTranslation
from voix import db, workers
from voix.forms import UserError
from voix.i18n import N_
from voix.permissions import Principal, require
from voix.web import absolute_url

# A second click on "Publish" with nothing changed returns the version the first one made.
RESUBMISSION_WINDOW = timedelta(minutes=10)
NOTHING_TO_SEND = N_("Choose at least one adopted proposal to send.")
NO_ADDRESSEE = N_("Choose at least one institution to address the document to.")
# Kept for tests of the paper map (exports/pdf/brief_map.svg).
MAP_BOX, MAP_DOT = snapshot.MAP_BOX, snapshot.MAP_DOT
# A version row's document before versions existed: `voix migrate` freezes those briefs.
LEGACY = -1


def brief_map(
    districts: list[dict[str, Any]], points: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The brief's map laid out for paper: dots of MAP_DOT mm fanned out where they would cover
    one another, on a map drawn in MAP_BOX."""
    return svg.layout(districts, points, dot=MAP_DOT, box=MAP_BOX)


async def get_brief(slug: str) -> dict[str, Any]:
    """The brief (draft and newest version number) with its table."""
    brief = await Brief.select().where(Brief.slug == slug).first()
    if brief is None:
        raise NotFoundException()
    brief["table"] = await get_table_by_id(brief["table"])
    return brief


async def for_table(table_id: int) -> list[dict[str, Any]]:
    """The table's published briefs, newest first, as their newest version reads (drafts:
    exports.drafts)."""
    return await (
        BriefVersion.select(
            BriefVersion.id.as_alias("version_id"),
            BriefVersion.brief.id.as_alias("id"),
            BriefVersion.brief.slug.as_alias("slug"),
            BriefVersion.brief.version.as_alias("version"),
            BriefVersion.title,
            BriefVersion.addressed_to,
            BriefVersion.language,
            BriefVersion.published_at,
        )
        .where(
            (BriefVersion.brief.table == table_id)
            & (BriefVersion.number == BriefVersion.brief.version)
        )
        .order_by(BriefVersion.published_at, ascending=False)
    )


async def published(brief_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each brief's newest version: its number, title, addressees and language as published
    (what the follow-up and the reminders quote, never the draft's words)."""
    if not brief_ids:
        return {}
    rows = await BriefVersion.select(
        BriefVersion.brief,
        BriefVersion.number,
        BriefVersion.title,
        BriefVersion.addressed_to,
        BriefVersion.language,
        BriefVersion.published_at,
        BriefVersion.brief.version.as_alias("newest"),  # joins the brief for the condition
    ).where(
        BriefVersion.brief.is_in(brief_ids) & (BriefVersion.number == BriefVersion.brief.version)
    )
    return {row["brief"]: row for row in rows}


def addressed_to(document: dict[str, Any]) -> str:
    return ", ".join(a["name"] for a in document["addressees"])[:500]


def _comparable(document: dict[str, Any]) -> str:
    """A document without what every publication changes: equal when nothing else did."""
    return snapshot.dumps(
        {k: v for k, v in document.items() if k not in ("version", "published_at", "url")}
    )


async def publish_version(
    who: Principal, brief: dict[str, Any], *, now: datetime | None = None
) -> int:
    """Freezes the draft as the brief's next version; returns its number.

    The adopted proposals it carries are moved to "sent to the institution"; each addressee
    and proposal is recorded as sent (the follow-up's clock starts at the first version that
    carried them). Concurrent publications of the same draft make one version."""
    table = brief["table"]
    require(who, "briefs.manage", scope_of(table))
    now = now or datetime.now(UTC)
    document = await snapshot.build(brief["id"], now=now)
    if not document["items"]:
        raise UserError(NOTHING_TO_SEND)
    if not document["addressees"]:
        raise UserError(NO_ADDRESSEE)
    same = _comparable(document)
    printed = await _printed_photos([item["photo"] for item in document["items"] if item["photo"]])
    async with db.write_transaction():
        while True:
            newest = await (
                BriefVersion.select(
                    BriefVersion.id, BriefVersion.number, BriefVersion.published_at,
                    BriefVersion.document,
                )
                .where(BriefVersion.brief == brief["id"])
                .order_by(BriefVersion.number, ascending=False)
                .first()
            )  # fmt: skip
            if (
                newest
                and db.utc(newest["published_at"]) > now - RESUBMISSION_WINDOW
                and _comparable(snapshot.loads(newest["document"])) == same
            ):
                return int(newest["number"])
            number = (newest["number"] if newest else 0) + 1
            document.update(
                version=number,
                published_at=now,
                url=absolute_url(f"/briefs/{brief['slug']}/v/{number}"),
            )
            inserted = await (
                BriefVersion.insert(
                    BriefVersion(
                        brief=brief["id"],
                        number=number,
                        published_at=now,
                        published_by=who.user_id,
                        language=document["language"],
                        title=document["title"],
                        addressed_to=addressed_to(document),
                        document=snapshot.dumps(document),
                    )
                )
                .on_conflict(action="DO NOTHING")
                .returning(BriefVersion.id)
            )
            if inserted:
                break  # otherwise another request published meanwhile: compare with it
        version_id = inserted[0]["id"]
        await _copy_photos(version_id, printed)
        await _carry_translations(brief["id"], newest, version_id, document)
        await Brief.update({Brief.version: number, Brief.published_at: now}).where(
            Brief.id == brief["id"]
        )
        for addressee in document["addressees"]:
            await BriefSent.insert(
                BriefSent(
                    brief=brief["id"], institution=addressee["id"], version=number, sent_at=now
                )
            ).on_conflict(action="DO NOTHING")
        for item in document["items"]:
            await SentProposal.insert(
                SentProposal(brief=brief["id"], proposal=item["id"], version=number, sent_at=now)
            ).on_conflict(action="DO NOTHING")
        sent = await (
            Proposal.update({Proposal.status: TRANSMITTED})
            .where(
                Proposal.id.is_in([item["id"] for item in document["items"]])
                & (Proposal.status == ADOPTED)
            )
            .returning(Proposal.id)
        )
        # Where it went, in no one language and no script of its own: the brief's address.
        reason = f"/briefs/{brief['slug']}/v/{number}"
        for row in sent:
            await discussion.record_change(row["id"], ADOPTED, TRANSMITTED, who, reason)
        await audit.record(
            who,
            "brief.published",
            scope_of(table),
            subject=f"brief:{brief['slug']}",
            version=number,
        )
    return number


async def _printed_photos(media_ids: list[int]) -> dict[int, tuple[str, bytes]]:
    """The photos a version prints, as it prints them (exports.photos), made in a worker
    before the publication's transaction: once, rather than at each rendering of each of its
    files (a tenth of a 200-proposal brief's time), and a tenth of the originals' weight to
    keep. One that cannot be read is kept as it is (the documents leave it out)."""
    if not media_ids:
        return {}
    rows = await Media.select(Media.id, Media.content_type, Media.data).where(
        Media.id.is_in(media_ids)
    )
    originals = {row["id"]: (row["content_type"], bytes(row["data"])) for row in rows}
    return {**originals, **await workers.run(printed_photos, originals)}


async def _copy_photos(version_id: int, printed: dict[int, tuple[str, bytes]]) -> None:
    """The version keeps its own copy of each photo it prints."""
    for media, (content_type, data) in printed.items():
        await BriefPhoto.insert(
            BriefPhoto(version=version_id, media=media, content_type=content_type, data=data)
        ).on_conflict(action="DO NOTHING")


async def _carry_translations(
    brief_id: int, previous: dict[str, Any] | None, version_id: int, document: dict[str, Any]
) -> None:
    """A new version whose title and context did not change keeps the translations of the
    one before: the facilitators do not translate the same words twice."""
    if previous is None:
        return
    before = snapshot.loads(previous["document"])
    if (before["title"], before["context"]) != (document["title"], document["context"]):
        return
    rows = await ContentTranslation.select().where(
        (ContentTranslation.kind == "brief") & (ContentTranslation.object_id == previous["id"])
    )
    for row in rows:
        await ContentTranslation.insert(
            ContentTranslation(
                table=row["table"],
                kind="brief",
                object_id=version_id,
                language=row["language"],
                fields=row["fields"],
                source=row["source"],
                translated_by=row["translated_by"],
                updated_at=row["updated_at"],
            )
        ).on_conflict(action="DO NOTHING")


async def version(slug: str, number: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The brief and one of its versions (the newest when `number` is None), its document
    loaded in `version["document"]`. NotFound for a draft never published."""
    brief = await get_brief(slug)
    wanted = brief["version"] if number is None else number
    row = await (
        BriefVersion.select()
        .where((BriefVersion.brief == brief["id"]) & (BriefVersion.number == wanted))
        .first()
    )
    if row is None or wanted < 1:
        raise NotFoundException()
    row["document"] = snapshot.loads(row["document"])
    return brief, row


async def versions_of(brief_id: int) -> list[dict[str, Any]]:
    return await (
        BriefVersion.select(BriefVersion.number, BriefVersion.published_at)
        .where(BriefVersion.brief == brief_id)
        .order_by(BriefVersion.number, ascending=False)
    )


async def read(
    row: dict[str, Any], lang: str, *, original: bool = False, count: bool = False
) -> tuple[dict[str, Any], content.Shown | None]:
    """A version as a reader of `lang` reads it (snapshot.localised), with what to say about
    its title and context's translation (translations.macros.notice)."""
    document = row["document"]
    texts = {"id": row["id"], "title": document["title"], "context": document["context"]}
    shown = (await content.apply("brief", [texts], lang, original=original, count=count)).get(
        row["id"]
    )
    translation = None
    if shown is not None and shown.state == content.TRANSLATED:
        typed = shown.translation  # only the parts the facilitators translated
        translation = {
            "title": typed.get("title", ""),
            "context": typed.get("context", ""),
            "context_html": typed.get("context:html", "") if typed.get("context") else "",
        }
    doc = snapshot.localised(document, lang, translation)
    await _withhold_hidden(doc)
    return doc, shown


async def _withhold_hidden(doc: dict[str, Any]) -> None:
    """A proposal hidden by moderation since the version was published is no longer shown in
    it (its page and files, made anew; the version's record keeps it), and the document says
    how many were withheld: what was sent cannot be recalled, what is published can."""
    ids = [item["id"] for item in doc["items"]]
    hidden = {
        row["id"]
        for row in await Proposal.select(Proposal.id).where(
            Proposal.id.is_in(ids or [0]) & Proposal.hidden_at.is_not_null()
        )
    }
    doc["withheld"] = len(hidden)
    if not hidden:
        return
    doc["items"] = [item for item in doc["items"] if item["id"] not in hidden]
    kept = {item["n"] for item in doc["items"]}
    doc["themes"] = [
        {**theme, "items": [n for n in theme["items"] if n in kept]}
        for theme in doc["themes"]
        if any(n in kept for n in theme["items"])
    ]
    if doc.get("map"):
        doc["map"]["points"] = [p for p in doc["map"].get("points", []) if p["id"] in kept]


async def photos(
    version_id: int, media_ids: list[int] | None = None
) -> dict[int, tuple[str, bytes]]:
    """The version's copies of its photos (all, or these): media id → (type, bytes)."""
    condition: Any = BriefPhoto.version == version_id
    if media_ids is not None:
        condition &= BriefPhoto.media.is_in(media_ids or [0])
    rows = await BriefPhoto.select(
        BriefPhoto.media, BriefPhoto.content_type, BriefPhoto.data
    ).where(condition)
    return {row["media"]: (row["content_type"], bytes(row["data"])) for row in rows}


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def freeze_legacy() -> int:
    """Briefs published before drafts and versions existed (marked LEGACY by their migration)
    become their version 1, as they read now; their translations move with them. Run by
    `voix migrate`; returns how many."""
    legacy = await Brief.select(Brief.id, Brief.slug, Brief.published_at).where(
        Brief.version == LEGACY
    )
    if not legacy:
        return 0
    ids = [row["id"] for row in legacy]
    documents = {}
    for row in legacy:
        document = await snapshot.build(row["id"], version=1, now=db.utc(row["published_at"]))
        document["url"] = absolute_url(f"/briefs/{row['slug']}/v/1")
        documents[row["id"]] = document
    # One transaction: translations are moved from brief ids to version ids through negative
    # ids, so that a version whose id is another brief's never takes that brief's translation.
    async with db.write_transaction():
        still = {
            r["id"]
            for r in await Brief.select(Brief.id).where(
                Brief.id.is_in(ids) & (Brief.version == LEGACY)
            )
        }
        translated = (ContentTranslation.kind == "brief") & ContentTranslation.object_id.is_in(
            sorted(still)
        )
        for moved in await ContentTranslation.select(
            ContentTranslation.id, ContentTranslation.object_id
        ).where(translated):
            await ContentTranslation.update(
                {ContentTranslation.object_id: -moved["object_id"]}
            ).where(ContentTranslation.id == moved["id"])
        for row in legacy:
            if row["id"] not in still:
                continue
            document = documents[row["id"]]
            inserted = await BriefVersion.insert(
                BriefVersion(
                    brief=row["id"],
                    number=1,
                    published_at=row["published_at"],
                    published_by=None,
                    language=document["language"],
                    title=document["title"],
                    addressed_to=addressed_to(document),
                    document=snapshot.dumps(document),
                )
            ).returning(BriefVersion.id)
            await ContentTranslation.update(
                {ContentTranslation.object_id: inserted[0]["id"]}
            ).where(
                (ContentTranslation.kind == "brief") & (ContentTranslation.object_id == -row["id"])
            )
            await Brief.update({Brief.version: 1}).where(Brief.id == row["id"])
    return len(still)


async def forget_signatory(user_id: int) -> None:
    """A resident erasing their account is no longer named anywhere: not in the drafts they
    agreed to sign, nor in the published versions that name them (the right to erasure comes
    before a version's permanence); those versions' files are made anew without the name.
    In the caller's transaction."""
    signed = (
        await BriefSignatory.delete()
        .where(BriefSignatory.user == user_id)
        .returning(BriefSignatory.brief, BriefSignatory.name)
    )
    names: dict[int, set[str]] = {}
    for row in signed:
        names.setdefault(row["brief"], set()).add(row["name"])
    for brief_id, gone in names.items():
        versions = await BriefVersion.select(
            BriefVersion.id, BriefVersion.number, BriefVersion.document,
            BriefVersion.brief.slug.as_alias("slug"),
        ).where(BriefVersion.brief == brief_id)  # fmt: skip
        for version in versions:
            document = snapshot.loads(version["document"])
            kept = [
                s for s in document["signatories"] if s["organisation"] or s["name"] not in gone
            ]
            if len(kept) == len(document["signatories"]):
                continue
            document["signatories"] = kept
            await BriefVersion.update({BriefVersion.document: snapshot.dumps(document)}).where(
                BriefVersion.id == version["id"]
            )
            await StoredPdf.delete().where(
                StoredPdf.document.like(f"brief:{version['slug']}:v{version['number']}:%")
            )
