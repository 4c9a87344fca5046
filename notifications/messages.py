"""What each event says, in the reader's language, by channel (site, sms, email).

    render(event, language, channel) -> Rendered

`event` is a mapping with "kind", "params" (a dict, or its JSON) and "path". Every text is a
gettext msgid rendered in the reader's language (outside any request: the language is set for
the call), times in Europe/Paris formatted by Babel as the pages format them. An SMS ends with
its absolute link on a line of its own and is fitted to GSM-7 where its language allows, then
cut to one segment (a facilitator's message keeps its text whole, up to a few segments).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_skeleton

from notifications import sms
from proposals.discussion import STATUS_LABELS
from voix import i18n
from voix.i18n import N_
from voix.settings import get_settings

SITE = "site"
SMS = "sms"
EMAIL = "email"

# The site's page of notifications: where a bundled SMS leads.
NOTIFICATIONS_PATH = "/notifications"
# A meeting's time and place are what its SMS is for: rather than cut the place (an Arabic
# SMS has 70 characters, the link included), they may take two segments.
KEEP_WHOLE = {"meeting.reminder": 2, "meeting.changed": 2}
# A facilitator's message (<= 300 characters) is not cut: at most this many segments.
MESSAGE_SEGMENTS = 5
# The date in an SMS (a Babel skeleton): "mer. 9 déc.", "Wed, Dec 9"; shorter in Arabic.
SMS_DATE = {"ar": "MMMd"}


@dataclass(frozen=True)
class Rendered:
    subject: str  # an e-mail's subject; the site's title
    text: str  # the SMS, the e-mail's body, the site's line
    path: str  # the link, relative to the base URL


# Shared pieces.
WHEN = N_("%(date)s at %(time)s")
WHEN_PLACE = N_("%(date)s at %(time)s, %(place)s")
ADDRESS = N_("Address: %(address)s")
AGENDA = N_("On the agenda:")

# Per kind: the subject (site title, e-mail subject), the text, the SMS.
MEETING_SCHEDULED = N_("%(table)s: new meeting, %(title)s")
MEETING_SCHEDULED_SMS = N_("New meeting %(when)s")
MEETING_CHANGED = N_("%(table)s: meeting changed, %(title)s")
MEETING_CHANGED_TEXT = N_("New date or place: %(when)s")
MEETING_CHANGED_SMS = N_("Meeting changed, now %(when)s")
MEETING_CANCELLED = N_("%(table)s: meeting cancelled, %(title)s")
MEETING_CANCELLED_TEXT = N_("The meeting of %(when)s is cancelled.")
MEETING_CANCELLED_SMS = N_("The meeting of %(when)s is cancelled")
MEETING_REMINDER = N_("%(table)s: meeting tomorrow at %(time)s")
MEETING_REMINDER_TEXT = N_("Tomorrow, %(when)s")
MEETING_REMINDER_SMS = N_("Meeting tomorrow at %(time)s, %(place)s")
VOTE_OPENED = N_("%(table)s: vote open, %(question)s")
VOTE_UNTIL = N_("You can vote until %(when)s.")
VOTE_NOW = N_("You can vote now.")
VOTE_OPENED_SMS = N_("Vote open: %(question)s")
VOTE_CLOSING = N_("%(table)s: the vote closes tomorrow, %(question)s")
VOTE_CLOSING_SMS = N_("Vote closes tomorrow at %(time)s: %(question)s")
VOTE_RESULT = N_("%(table)s: result of the vote, %(question)s")
VOTE_RESULT_TEXT = N_("The vote is closed. Its result is published.")
VOTE_RESULT_SMS = N_("Result of the vote: %(question)s")
PROPOSAL_STATUS = N_("%(table)s: %(title)s, %(status)s")
PROPOSAL_STATUS_TEXT = N_("The proposal “%(title)s” is now: %(status)s.")
PROPOSAL_STATUS_SMS = N_("“%(title)s” is now: %(status)s")
INSTITUTION_ANSWER = N_("%(table)s: %(institution)s answered")
INSTITUTION_ANSWER_TEXT = N_("%(institution)s answered the document “%(brief)s”.")
INSTITUTION_ANSWER_SMS = N_("%(institution)s answered “%(brief)s”")
MINUTES_PUBLISHED = N_("%(table)s: minutes published, %(title)s")
MINUTES_PUBLISHED_TEXT = N_("The minutes of the meeting of %(date)s are published.")
MINUTES_PUBLISHED_SMS = N_("Minutes of %(date)s published")
MESSAGE = N_("Message from the table %(table)s")
MESSAGE_FRAME = N_("%(author)s, for the table %(table)s:")
MESSAGE_SMS = N_("%(table)s (%(author)s):")
SOMETHING_NEW = N_("Voix des Quartiers: something new for you")
# An SMS names its table first when it fits in one segment with it.
SMS_FROM_TABLE = N_("%(table)s: %(text)s")

# Bundles, the digest, the e-mails' footer.
DIGEST_INTRO = N_("What is new for you on Voix des Quartiers:")
FOOTER = N_(
    "You receive these e-mails because you chose them on Voix des Quartiers. To stop them: %(link)s"
)


@contextmanager
def speaking(language: str | None) -> Iterator[str]:
    """Renders in `language` (a resident's account.language) until the block ends."""
    code = i18n.normalise(language) or i18n.DEFAULT_LANGUAGE
    token = i18n.current_language.set(code)
    try:
        yield code
    finally:
        i18n.current_language.reset(token)


def link(path: str) -> str:
    return get_settings().base_url + path


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _date(value: datetime, channel: str) -> str:
    """ "mercredi 2 décembre 2026" on the site and in e-mails; "mer. 2 déc." by SMS."""
    if channel == SMS:
        local = i18n.utc(value).astimezone(i18n.LOCAL_TIMEZONE)
        language = i18n.current_language.get()
        # Arabic goes in UCS-2 (70 characters a segment): no weekday, "9 ديسمبر".
        return format_skeleton(SMS_DATE.get(language, "MMMEd"), local, locale=language)
    return i18n.date(value, "full")


def _time(value: datetime, channel: str) -> str:
    if channel == SMS:  # 24 hours, digits a GSM phone shows: "18:30"
        local = i18n.utc(value).astimezone(i18n.LOCAL_TIMEZONE)
        return format_skeleton("Hm", local, locale=i18n.current_language.get())
    return i18n.time(value)


def _when(value: Any, channel: str, place: str = "") -> str:
    at = _instant(value)
    if at is None:
        return place
    parts = {"date": _date(at, channel), "time": _time(at, channel)}
    if place:
        return i18n.gettext(WHEN_PLACE, place=place, **parts)
    return i18n.gettext(WHEN, **parts)


@dataclass(frozen=True)
class _Facts:
    """An event's parameters, cleaned, with its times formatted for the channel."""

    params: Mapping[str, Any]
    channel: str

    def __getattr__(self, name: str) -> str:
        value = self.params.get(name)
        return "" if value is None else " ".join(str(value).split())

    def when(self, name: str = "starts_at", *, place: bool = True) -> str:
        return _when(self.params.get(name), self.channel, self.place if place else "")

    def time(self, name: str = "starts_at") -> str:
        at = _instant(self.params.get(name))
        return _time(at, self.channel) if at else ""

    def date(self, name: str = "starts_at") -> str:
        at = _instant(self.params.get(name))
        return _date(at, self.channel) if at else ""

    def with_address(self, text: str) -> str:
        return text + "\n" + _(ADDRESS, address=self.address) if self.address else text


_ = i18n.gettext
Body = tuple[str, str, str]  # subject, text (site, e-mail), SMS


def _meeting_scheduled(f: _Facts) -> Body:
    return (
        _(MEETING_SCHEDULED, table=f.table, title=f.title),
        f.with_address(f.when()),
        _(MEETING_SCHEDULED_SMS, when=f.when()),
    )


def _meeting_changed(f: _Facts) -> Body:
    return (
        _(MEETING_CHANGED, table=f.table, title=f.title),
        f.with_address(_(MEETING_CHANGED_TEXT, when=f.when())),
        _(MEETING_CHANGED_SMS, when=f.when()),
    )


def _meeting_cancelled(f: _Facts) -> Body:
    when = f.when(place=False)
    return (
        _(MEETING_CANCELLED, table=f.table, title=f.title),
        _(MEETING_CANCELLED_TEXT, when=when),
        _(MEETING_CANCELLED_SMS, when=when),
    )


def _meeting_reminder(f: _Facts) -> Body:
    text = f.with_address(_(MEETING_REMINDER_TEXT, when=f.when()))
    agenda = [" ".join(str(item).split()) for item in f.params.get("agenda") or () if item]
    if agenda:
        text += "\n\n" + _(AGENDA) + "\n" + "\n".join(f"- {item}" for item in agenda)
    sms_line = _(MEETING_REMINDER_SMS, time=f.time(), place=f.place)
    return _(MEETING_REMINDER, table=f.table, time=f.time()), text, sms_line.rstrip(", ،")


def _until(f: _Facts) -> str:
    return _(VOTE_UNTIL, when=f.when("closes_at", place=False)) if f.closes_at else _(VOTE_NOW)


def _vote_opened(f: _Facts) -> Body:
    return (
        _(VOTE_OPENED, table=f.table, question=f.question),
        _until(f),
        _(VOTE_OPENED_SMS, question=f.question),
    )


def _vote_closing(f: _Facts) -> Body:
    return (
        _(VOTE_CLOSING, table=f.table, question=f.question),
        _until(f),
        _(VOTE_CLOSING_SMS, time=f.time("closes_at"), question=f.question),
    )


def _vote_result(f: _Facts) -> Body:
    return (
        _(VOTE_RESULT, table=f.table, question=f.question),
        _(VOTE_RESULT_TEXT),
        _(VOTE_RESULT_SMS, question=f.question),
    )


def _proposal_status(f: _Facts) -> Body:
    label = STATUS_LABELS.get(f.status)
    status = _(label) if label else f.status
    return (
        _(PROPOSAL_STATUS, table=f.table, title=f.title, status=status),
        _(PROPOSAL_STATUS_TEXT, title=f.title, status=status),
        _(PROPOSAL_STATUS_SMS, title=f.title, status=status),
    )


def _institution_answer(f: _Facts) -> Body:
    return (
        _(INSTITUTION_ANSWER, table=f.table, institution=f.institution),
        _(INSTITUTION_ANSWER_TEXT, institution=f.institution, brief=f.brief),
        _(INSTITUTION_ANSWER_SMS, institution=f.institution, brief=f.brief),
    )


def _minutes_published(f: _Facts) -> Body:
    return (
        _(MINUTES_PUBLISHED, table=f.table, title=f.title),
        _(MINUTES_PUBLISHED_TEXT, date=f.date()),
        _(MINUTES_PUBLISHED_SMS, date=f.date()),
    )


def _message(f: _Facts) -> Body:
    typed = str(f.params.get("text") or "").strip()  # as typed: its line breaks kept
    return (
        _(MESSAGE, table=f.table),
        _(MESSAGE_FRAME, author=f.author, table=f.table) + "\n" + typed,
        _(MESSAGE_SMS, table=f.table, author=f.author) + "\n" + typed,
    )


KINDS = {
    "meeting.scheduled": _meeting_scheduled,
    "meeting.changed": _meeting_changed,
    "meeting.cancelled": _meeting_cancelled,
    "meeting.reminder": _meeting_reminder,
    "vote.opened": _vote_opened,
    "vote.closing": _vote_closing,
    "vote.result": _vote_result,
    "proposal.status": _proposal_status,
    "institution.answer": _institution_answer,
    "minutes.published": _minutes_published,
    "message": _message,
}


def _body(kind: str, params: Mapping[str, Any], channel: str) -> Body:
    """(subject, text, sms) for one event, in the current language."""
    build = KINDS.get(kind)
    if build is None:
        return _(SOMETHING_NEW), "", _(SOMETHING_NEW)
    return build(_Facts(params, channel))


def sms_text(body: str, path: str, segments: int = 1) -> str:
    """The SMS: its text, then the absolute link on a line of its own; in GSM-7 where only
    typography stood in the way, cut to `segments` (the link kept whole; 0: not cut)."""
    whole = sms.fit(f"{body.strip()}\n{link(path)}")
    return sms.shorten(whole, segments) if segments else whole


def params_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event's parameters, decoded from the JSON text the database holds."""
    params = event.get("params") or {}
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = {}
    return dict(params) if isinstance(params, Mapping) else {}


def render(event: Mapping[str, Any], language: str, channel: str) -> Rendered:
    kind, path, params = (
        str(event.get("kind") or ""),
        str(event.get("path") or "/"),
        params_of(event),
    )
    with speaking(language):
        subject, text, short = _body(kind, params, channel)
        table = " ".join(str(params.get("table") or "").split())
        named = i18n.gettext(SMS_FROM_TABLE, table=table, text=short) if table else short
    if channel == SMS:
        if kind == "message":  # named already, and not cut
            return Rendered(
                subject=subject, text=sms_text(short, path, MESSAGE_SEGMENTS), path=path
            )
        # With its table's name if that fits one segment; else without, cut if it must be.
        whole = sms_text(named, path, segments=0)
        if sms.segments(whole) > 1:
            whole = sms_text(short, path, KEEP_WHOLE.get(kind, 1))
        return Rendered(subject=subject, text=whole, path=path)
    if channel == EMAIL:
        body = f"{text}\n\n{link(path)}" if text else link(path)
        return Rendered(subject=subject, text=body, path=path)
    return Rendered(subject=subject, text=text, path=path)


def render_bundle(count: int, language: str, channel: str) -> Rendered:
    """Several notifications in one message: an SMS that counts them and leads to the
    notifications page; a digest e-mail's subject (its body is `render_digest`)."""
    with speaking(language):
        if channel == SMS:
            text = i18n.ngettext(
                "Voix des Quartiers: %(num)d new notification",
                "Voix des Quartiers: %(num)d new notifications",
                count,
            )
            return Rendered(
                subject=text, text=sms_text(text, NOTIFICATIONS_PATH), path=NOTIFICATIONS_PATH
            )
        subject = i18n.ngettext("%(num)d new notification", "%(num)d new notifications", count)
        return Rendered(subject=subject, text=subject, path=NOTIFICATIONS_PATH)


def render_digest(events: Sequence[Mapping[str, Any]], language: str) -> Rendered:
    """One e-mail listing several events: each one's subject, text and link."""
    parts = []
    for event in events:
        one = render(event, language, SITE)
        lines = [f"- {one.subject}", *(f"  {line}" for line in one.text.splitlines() if line)]
        parts.append("\n".join([*lines, f"  {link(one.path)}"]))
    subject = render_bundle(len(events), language, EMAIL).subject
    with speaking(language):
        intro = i18n.gettext(DIGEST_INTRO)
    body = intro + "\n\n" + "\n\n".join(parts) + f"\n\n{link(NOTIFICATIONS_PATH)}"
    return Rendered(subject=subject, text=body, path=NOTIFICATIONS_PATH)


def footer(language: str, stop_path: str) -> str:
    """The last lines of every notification e-mail: why it came, and how to stop them."""
    with speaking(language):
        return "\n\n-- \n" + i18n.gettext(FOOTER, link=link(stop_path))
