"""Form validation with translated messages. Services raise FormErrors; pages show them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cache
from typing import Any

from voix.i18n import LOCAL_TIMEZONE, N_, gettext

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\u2028\u2029\ufeff]")
# Embeddings, overrides and isolates reorder the text around them: "Admin\u202etxt.exe" prints
# as "Adminexe.txt" in a page or a PDF. Nobody types them on purpose, so they go everywhere.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# The marks only settle where neutral characters (punctuation, digits) fall; Arabic keyboards
# insert them in mixed Arabic and French paragraphs, so multiline text keeps them. In a name,
# title or place they only make look-alikes ("Fatou" and "Fatou\u200e" counted as two people).
_BIDI_MARKS = re.compile(r"[\u200e\u200f\u061c]")
_SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Message:
    """A message translated when shown, in the language of whoever reads it."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return gettext(self.msgid, **self.params)


class FormErrors(Exception):
    def __init__(self, errors: Mapping[str, Message]) -> None:
        super().__init__(", ".join(errors))
        self.errors = dict(errors)


class UserError(Exception):
    """A refusal to show the user as it is (already voted, vote closed, ...)."""

    def __init__(self, msgid: str, status_code: int = 409, **params: Any) -> None:
        super().__init__(msgid)
        self.message = Message(msgid, params)
        self.status_code = status_code


REQUIRED = N_("This field is required.")
TOO_LONG = N_("Please keep it under %(max)d characters.")
TOO_SHORT = N_("Please write at least %(min)d characters.")
UNKNOWN_CHOICE = N_("Please choose one of the options offered.")
NUMBER_RANGE = N_("Please give a whole number from %(min)d to %(max)d.")
EMAIL_INVALID = N_("This e-mail address does not look right.")
DATE_INVALID = N_("Please give the date as day, month and year (for example 2026-12-03).")
TIME_INVALID = N_("Please give the time as hours and minutes (for example 18:30).")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")


# NFC sorts each run of combining marks by insertion: 60,000 marks in a row took 7.7 s of the
# event loop. Unicode's stream-safe format (UAX #15) allows 30 in a row; no script needs more.
STREAM_SAFE_RUN = 30
_SHORT_ENOUGH = 1_000  # below this, even a worst-case run normalises in a few milliseconds


@cache
def _long_mark_run() -> re.Pattern[str]:
    marks, start = [], None
    for point in range(0x110000):
        if unicodedata.combining(chr(point)):
            start = point if start is None else start
        elif start is not None:
            marks.append(f"\\U{start:08x}-\\U{point - 1:08x}")
            start = None
    marks_class = "[" + "".join(marks) + "]"
    return re.compile(f"({marks_class}{{{STREAM_SAFE_RUN}}}){marks_class}+")


def stream_safe(text: str) -> str:
    """At most 30 combining marks in a row (the rest dropped), so normalising stays linear."""
    if len(text) < _SHORT_ENOUGH or text.isascii():
        return text
    return _long_mark_run().sub(r"\1", text)


def ascii_slug(text: str) -> str:
    """Letters and digits in ASCII, dashes between: "Très bien" → "tres-bien" (accents dropped,
    other scripts too, so callers bound or replace what is left)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def clean_text(value: str | None, multiline: bool = False) -> str:
    """NFC, no control characters (nor bidirectional ones: marks stay in multiline text only),
    single spaces; at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", stream_safe(value or ""))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BIDI_CONTROLS.sub("", text if multiline else _BIDI_MARKS.sub("", text))
    lines = [_SPACES.sub(" ", _CONTROL.sub("", line)).strip() for line in text.split("\n")]
    if not multiline:
        return " ".join(line for line in lines if line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def raw_limit(max_length: int) -> int:
    """How long typed text may be before cleaning, for a field of `max_length` characters."""
    return 4 * max_length + 16


MAX_INT = 2**31 - 1  # PostgreSQL's integer: a larger id is refused, not sent to the database


def parse_int(raw: object, *, min: int = 0, max: int = MAX_INT) -> int | None:
    """A whole number written in ASCII digits, within [min, max]; None for anything else.

    The one place numbers from requests are read: str.isdigit() is true for "²" (which int()
    refuses) and for "٣" (which int() reads as 3), and int() accepts " 3", "+3" and "3_0".
    """
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()):
        return None
    if len(raw.lstrip("0")) > len(str(max)):  # before int(): thousands of digits cost time
        return None
    value = int(raw)
    return value if min <= value <= max else None


_DECIMAL = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,15})?", re.ASCII)


def parse_coordinate(raw: object) -> float | None:
    """A latitude or longitude as a browser's map writes it (ASCII digits, a dot); float() also
    takes "nan", "inf", "1_0", "٣" and spaces."""
    return float(raw) if isinstance(raw, str) and _DECIMAL.fullmatch(raw) else None


class Form:
    """Reads submitted values, collecting every error before any is reported."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, Message] = {}

    def _raw(self, name: str) -> str:
        """The field as typed; a number given by code (not a browser) reads as its digits."""
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value if isinstance(value, str) else ""

    def text(
        self,
        name: str,
        *,
        max_length: int,
        min_length: int = 0,
        required: bool = True,
        multiline: bool = False,
    ) -> str:
        raw = self._raw(name)
        if len(raw) > raw_limit(max_length):
            # Refused before any work on it; NFC may shorten text, but never by more than this.
            self.errors[name] = Message(TOO_LONG, {"max": max_length})
            return ""
        value = clean_text(raw, multiline=multiline)
        if not value:
            if required:
                self.errors[name] = Message(REQUIRED)
        elif len(value) > max_length:
            self.errors[name] = Message(TOO_LONG, {"max": max_length})
        elif len(value) < min_length:
            self.errors[name] = Message(TOO_SHORT, {"min": min_length})
        return value

    def choice(self, name: str, choices: Iterable[str], *, required: bool = True) -> str:
        value = self._raw(name).strip()
        if not value:
            if required:
                self.errors[name] = Message(REQUIRED)
        elif value not in set(choices):
            self.errors[name] = Message(UNKNOWN_CHOICE)
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = True,
        min: int = 1,
        max: int = MAX_INT,
        typed: bool = False,
    ) -> int | None:
        """A number, by default an id (1 and up); anything else is not one of the options.
        A number the person `typed` is refused by saying the range it must be in."""
        raw = self._raw(name).strip()
        if not raw:
            if required:
                self.errors[name] = Message(REQUIRED)
            return None
        value = parse_int(raw, min=min, max=max)
        if value is None:
            if typed:
                self.errors[name] = Message(NUMBER_RANGE, {"min": min, "max": max})
            else:
                self.errors[name] = Message(UNKNOWN_CHOICE)
        return value

    def email(self, name: str, *, required: bool = False) -> str | None:
        """An e-mail address, lower-cased; optional unless said otherwise."""
        value = self.text(name, max_length=254, required=required).lower()
        if value and not _EMAIL.fullmatch(value):
            self.errors[name] = Message(EMAIL_INVALID)
        return value or None

    def day(self, name: str, *, required: bool = True) -> date | None:
        raw = self.text(name, max_length=10, required=required)
        if not raw:
            return None
        try:
            if not _DATE.fullmatch(raw):
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            self.error(name, DATE_INVALID)
            return None

    def local_moment(self, day: date | None, name: str) -> datetime | None:
        """A time of day (HH:MM) on `day`, in the product's time zone (Europe/Paris)."""
        raw = self.text(name, max_length=5, required=day is not None)
        if not raw or day is None:
            return None
        found = _TIME.fullmatch(raw)
        if not found or int(found[1]) > 23 or int(found[2]) > 59:
            self.error(name, TIME_INVALID)
            return None
        return datetime.combine(day, time(int(found[1]), int(found[2])), tzinfo=LOCAL_TIMEZONE)

    def error(self, name: str, msgid: str, **params: Any) -> None:
        self.errors.setdefault(name, Message(msgid, params))

    def validate(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)
