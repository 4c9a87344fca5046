"""Form validation with translated messages. Services raise FormErrors; pages show them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voix.i18n import N_, gettext

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\u2028\u2029\ufeff]")
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
EMAIL_INVALID = N_("This e-mail address does not look right.")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def clean_text(value: str | None, multiline: bool = False) -> str:
    """NFC, no control characters, single spaces; at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", _CONTROL.sub("", line)).strip() for line in text.split("\n")]
    if not multiline:
        return " ".join(line for line in lines if line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class Form:
    """Reads submitted values, collecting every error before any is reported."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, Message] = {}

    def _raw(self, name: str) -> str:
        value = self.data.get(name)
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
        value = clean_text(self._raw(name), multiline=multiline)
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

    def integer(self, name: str, *, required: bool = True) -> int | None:
        value = self._raw(name).strip()
        if not value:
            if required:
                self.errors[name] = Message(REQUIRED)
            return None
        if not value.isdigit() or len(value) > 9:
            self.errors[name] = Message(UNKNOWN_CHOICE)
            return None
        return int(value)

    def email(self, name: str, *, required: bool = False) -> str | None:
        """An e-mail address, lower-cased; optional unless said otherwise."""
        value = self.text(name, max_length=254, required=required).lower()
        if value and not _EMAIL.fullmatch(value):
            self.errors[name] = Message(EMAIL_INVALID)
        return value or None

    def error(self, name: str, msgid: str, **params: Any) -> None:
        self.errors.setdefault(name, Message(msgid, params))

    def validate(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)
