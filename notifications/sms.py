"""SMS text: which alphabet it needs and how many segments it costs (3GPP TS 23.038).

A message in the GSM 7-bit alphabet fits 160 characters in one segment (153 each when split);
one character outside it (Arabic, "ê", "œ", an emoji) makes the whole message UCS-2: 70 UTF-16
units in one segment (67 each when split). French typography brings in characters GSM lacks
(the typographic apostrophe, « », non-breaking spaces, ê, â, î, ô, û, ë, ï): `fit` replaces them
with the nearest GSM character, so a French message stays in one 160-character segment; Arabic
is left as it is (UCS-2, 70 characters).
"""

from __future__ import annotations

import unicodedata

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The basic character set, and the extension table (each costs two: escape + character).
_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = frozenset("^{}\\[~]|€\f")

# What French (and English) text uses that GSM lacks, and what stands in for it.
_NEAREST = {
    "\u2019": "'",
    "\u2018": "'",
    "\u02bc": "'",
    "«": '"',
    "»": '"',
    "\u201c": '"',
    "\u201d": '"',
    "\u00a0": " ",
    "\u202f": " ",
    "\u2009": " ",
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "œ": "oe",
    "Œ": "OE",
    "ç": "Ç",  # GSM's 0x09 is the capital; phones show it as ç
}

SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}


def encoding(text: str) -> str:
    return GSM7 if all(c in _BASIC or c in _EXTENSION for c in text) else UCS2


def length(text: str) -> int:
    """Characters as the network counts them: septets for GSM-7, UTF-16 units for UCS-2."""
    if encoding(text) == GSM7:
        return sum(2 if c in _EXTENSION else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    if not text:
        return 1
    alphabet = encoding(text)
    size = length(text)
    if size <= SINGLE[alphabet]:
        return 1
    return -(-size // PART[alphabet])


def _nearest(character: str) -> str:
    if character in _BASIC or character in _EXTENSION:
        return character
    if character in _NEAREST:
        return _NEAREST[character]
    # ê → e, î → i, ô → o, û → u, ë → e, Â → A: the letter without its accent, when it is Latin.
    bare = "".join(
        c for c in unicodedata.normalize("NFD", character) if not unicodedata.combining(c)
    )
    if bare and all(c in _BASIC for c in bare):
        return bare
    return character


def fit(text: str) -> str:
    """The text in GSM-7 where only typography or accents stand in the way; else unchanged
    (Arabic stays Arabic: it needs UCS-2 whatever is done)."""
    replaced = "".join(_nearest(c) for c in text)
    return replaced if encoding(replaced) == GSM7 else text


def shorten(text: str, budget_segments: int = 1) -> str:
    """The text cut (with "…" or "...") to fit `budget_segments`, if it can be; the link, which
    callers put last on its own line, is kept whole."""
    if segments(text) <= budget_segments:
        return text
    head, _, link = text.rpartition("\n")
    if not head:
        head, link = text, ""
    alphabet = encoding(text)
    limit = SINGLE[alphabet] if budget_segments == 1 else PART[alphabet] * budget_segments
    ellipsis = "..." if alphabet == GSM7 else "…"
    tail = f"\n{link}" if link else ""
    room = limit - length(tail) - length(ellipsis)
    cut = head
    while cut and length(cut) > room:
        cut = cut[:-1]
    return (cut.rstrip() + ellipsis + tail) if cut else text
