"""Languages, gettext catalogs and the language of the current request.

Catalogs are read from locales/<lang>/LC_MESSAGES/messages.po and compiled in memory at
first use, so a fresh clone needs no compile step and a stale .mo can never be served.
Message ids are English; French is the default language of the product.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from voix.db import utc
from voix.settings import PROJECT_ROOT

LOCALES_DIR = PROJECT_ROOT / "locales"
DEFAULT_LANGUAGE = "fr"
LANGUAGES = ("fr", "ar", "en")
RTL_LANGUAGES = frozenset({"ar"})
LOCAL_TIMEZONE = ZoneInfo("Europe/Paris")

current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


@dataclass(frozen=True)
class Language:
    code: str
    native_name: str
    direction: str


@lru_cache(maxsize=64)  # every page asks it of its reader's language: built once per code
def language(code: str) -> Language:
    name = Locale.parse(code).get_display_name(code) or code
    return Language(code, name[:1].upper() + name[1:], "rtl" if code in RTL_LANGUAGES else "ltr")


def language_name(code: str) -> str:
    """The name of a language in the reader's language: "arabe", "Arabic", "العربية"."""
    return _language_name(code, current_language.get())


@lru_cache(maxsize=256)
def _language_name(code: str, reader: str) -> str:
    try:
        return Locale.parse(code).get_display_name(reader) or code
    except (ValueError, TypeError):
        return code


@lru_cache(maxsize=64)
def _locale(code: str) -> Locale:
    """Babel's locale of a reader's language, parsed once (each date formatted parsed it)."""
    return Locale.parse(code)


@cache
def catalog(code: str) -> Translations:
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as po:
        parsed = read_po(po, locale=code)
    compiled = io.BytesIO()
    write_mo(compiled, parsed, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def gettext(message: str, **params: Any) -> str:
    text = catalog(current_language.get()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = catalog(current_language.get()).ngettext(singular, plural, n)
    return text % {"num": n, **params}


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


def normalise(code: str | None) -> str | None:
    if code and (short := code.strip().lower()[:2]) in LANGUAGES:
        return short
    return None


def negotiate(accept_language: str | None) -> str:
    if not accept_language:
        return DEFAULT_LANGUAGE
    weighted = []
    for part in accept_language.split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        weighted.append((weight, tag.strip().replace("-", "_")))
    preferred = [tag for _, tag in sorted(weighted, key=lambda pair: -pair[0])]
    return negotiate_locale(preferred, list(LANGUAGES)) or DEFAULT_LANGUAGE


def _local(value: Any) -> Any:
    """Timestamps are stored in UTC; people read them in Marseille's time."""
    if isinstance(value, dt.datetime):
        return utc(value).astimezone(LOCAL_TIMEZONE)
    return value


def date(value: Any, form: str = "long") -> str:
    return format_date(_local(value), format=form, locale=_locale(current_language.get()))


def datetime(value: Any, form: str = "medium") -> str:
    return format_datetime(_local(value), format=form, locale=_locale(current_language.get()))


def time(value: Any, form: str = "short") -> str:
    return format_time(_local(value), format=form, locale=_locale(current_language.get()))


def direction(text: object) -> str:
    """The direction of a text by its first strong character, as dir="auto" decides.

    For renderers that do not implement dir="auto" (WeasyPrint).
    """
    for char in str(text):  # a Message too: its text in the reader's language
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return "ltr"
