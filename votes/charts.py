"""Vote results drawn on the server as inline SVG, for pages and for PDF documents alike.

Pure functions: no database, no request. Each returns a `Markup` holding one `<svg>` that
Chromium and WeasyPrint both draw the same way, so it keeps to what WeasyPrint supports:
rect, line, text, title, desc and g, colours given as attributes, no CSS variables, no
foreignObject and nothing fetched. Every coordinate is rounded to one decimal and nothing
depends on time or memory addresses: the same input gives the same bytes.

The caller owns gettext: every sentence a reader sees or hears (title, description, captions,
number formats) comes in as a string or a callable, with an English default for tests and
tools. User text (option labels) is escaped here; a `Markup` label is unescaped first, so it
is never inserted as markup nor escaped twice.

Accessibility: `role="img"` with `aria-labelledby` naming the chart's `<title>` and `<desc>`,
the desc being a full text version of the chart. Colour never carries meaning alone: each
segment carries its percentage where it fits, a legend names every colour, and segment text
is black or white, whichever contrasts more with its fill (always at least 4.5:1, WCAG AA).

Right-to-left (`rtl=True`): the bars run from the right (best grade on the right), labels and
legend start on the right, and text anchors flip. Every `<text>` is set `direction="ltr"`
with an anchor chosen for the side it must hug, so a chart inside `<html dir="rtl">` (which
Chromium lets the SVG inherit, WeasyPrint not) is drawn the same everywhere; text holding
Arabic or Hebrew letters is written in visual order (see "Right-to-left text" below), its
paragraph direction taken from its first strong character, as HTML's `dir="auto"` does.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

from votes.scales import GRADE_COLOURS

WIDTH = 480
FONT_FAMILY = "Noto Sans, Noto Sans Arabic, Noto Naskh Arabic, DejaVu Sans, sans-serif"

INK = "#1d2230"
MUTED = "#4a5160"
OUTLINE = "#8a909c"
EMPTY = "#f5f4f1"
TRACK = "#e9ebef"
BLACK = "#000000"
WHITE = "#ffffff"
FALLBACK_COLOUR = "#8a909c"
APPROVAL_COLOUR = "#2c5d8f"
# For (green), against (a deep red), abstain (a mid grey): three colours apart, each at least
# 3:1 against the white page and the light track (WCAG non-text contrast), each under black or
# white text at 4.5:1 or more. The bars of voix/templates/macros.html `results` use the same.
YES_NO_COLOURS = ("#1f6b3a", "#a3262a", "#767c88")  # for, against, abstain

MARGIN = 8
LABEL_SIZE = 15
LABEL_LEADING = 19
SMALL_SIZE = 13
BAR_HEIGHT = 28
SEGMENT_PADDING = 4
MAX_LABEL_LINES = 3
ELLIPSIS = "…"
NNBSP = "\u202f"

_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


# Colours and contrast (WCAG 2.x) ----------------------------------------------------------


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance of a `#rrggbb` colour, from 0 (black) to 1 (white)."""
    value = colour.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"Expected #rrggbb, not {colour!r}")
    channels = []
    for i in (0, 2, 4):
        c = int(value[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio between two colours, from 1 to 21."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)))[::-1]
    return (lighter + 0.05) / (darker + 0.05)


def text_colour_on(fill: str) -> str:
    """Black or white, whichever contrasts more with `fill` (never under 4.58:1)."""
    return BLACK if contrast_ratio(BLACK, fill) >= contrast_ratio(WHITE, fill) else WHITE


# English defaults: the caller passes translated ones -----------------------------------------


def format_percent(percent: float) -> str:
    """`42 %`: rounded half up to a whole number, narrow no-break space as in French."""
    return f"{math.floor(percent + 0.5)}{NNBSP}%"


def _precise(percent: float) -> str:
    return f"{percent:.1f}{NNBSP}%"


def describe_merit(label: str, majority: str | None, parts: list[tuple[str, int, float]]) -> str:
    """One sentence per option: its majority grade, then each grade's count and share."""
    if majority is None or not any(count for _, count, _ in parts):
        return f"{label}: no votes."
    shares = ", ".join(f"{grade} {count} ({_precise(p)})" for grade, count, p in parts)
    return f"{label}: majority grade {majority}; {shares}."


def majority_caption(grade: str) -> str:
    return f"Majority grade: {grade}"


def describe_approval(label: str, approvals: int, participants: int, percent: float) -> str:
    return (
        f"{label}: {approvals} approvals out of {participants} participants ({_precise(percent)})."
    )


def describe_yes_no(parts: list[tuple[str, int, float]]) -> str:
    return "; ".join(f"{label}: {count} ({_precise(p)})" for label, count, p in parts) + "."


def approval_value(approvals: int, percent: float) -> str:
    return f"{approvals} ({format_percent(percent)})"


# Text: cleaning, direction, estimated width, wrapping --------------------------------------


_LINE_BREAKS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029")


def _plain(value: Any) -> str:
    """Text safe for XML: Markup unescaped (it is escaped again on output, never trusted),
    line breaks made spaces, control and unassigned characters dropped, spaces collapsed.
    No-break spaces are kept: `42\u202f%` must not break."""
    text = value.unescape() if isinstance(value, Markup) else str(value)
    kept = []
    for ch in text:
        if ch in _LINE_BREAKS:
            kept.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn"):
            kept.append(ch)
    return re.sub(" {2,}", " ", "".join(kept)).strip(" ")


def _direction(text: str, default: str) -> str:
    """The direction of the first strong character, as HTML's dir="auto" finds it."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return default


_NARROW = set("iljtfrI.,;:!|'()[]{}\"/-")
_WIDE = set("mwMW@%&—")


def _char_width(ch: str) -> float:
    """Advance of one character in ems, rounded up from Noto Sans."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        width = 0.0
    elif ch in (" ", NNBSP):
        width = 0.27
    elif ch in _NARROW:
        width = 0.32
    elif ch in _WIDE:
        width = 0.86
    elif unicodedata.east_asian_width(ch) in ("W", "F"):
        width = 1.0
    elif ch.isdigit():
        width = 0.58
    elif ch.isupper():
        width = 0.68
    elif "\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" or "\ufb50" <= ch <= "\ufeff":
        width = 0.52
    else:
        width = 0.57
    return width


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """A generous estimate of the width of `text` in Noto Sans (no font is read: determinism)."""
    return sum(_char_width(ch) for ch in text) * size * (1.07 if bold else 1.0)


def _truncate(text: str, width: float, size: float, bold: bool) -> str:
    while text and text_width(text + ELLIPSIS, size, bold=bold) > width:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS


def wrap(text: str, width: float, size: float, *, bold: bool = False, lines: int = 2) -> list[str]:
    """Greedy wrapping on spaces (a word wider than the line is cut), at most `lines` lines,
    the last one ending with an ellipsis when the text does not fit."""
    result: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size, bold=bold) <= width:
            current = candidate
            continue
        if current:
            result.append(current)
        current = word
        while len(current) > 1 and text_width(current, size, bold=bold) > width:
            cut = len(current) - 1
            while cut > 1 and text_width(current[:cut], size, bold=bold) > width:
                cut -= 1
            result.append(current[:cut])
            current = current[cut:]
    result.append(current)
    if len(result) > lines:
        rest = " ".join(result[lines - 1 :])
        result = [*result[: lines - 1], _truncate(rest, width, size, bold)]
    return result


# Right-to-left text, written in visual order -------------------------------------------------
# WeasyPrint (70 and before) draws SVG text one code point at a time, left to right, with
# neither shaping nor bidi (Kozea/WeasyPrint#2909): Arabic would come out mirrored, in
# isolated letters, vowel marks on dotted circles. So any text holding right-to-left letters
# is written here in the order it is seen, Arabic letters in their contextual presentation
# forms, and marked `unicode-bidi="bidi-override"` so that Chromium draws it as given too.
# Optional vowel marks (tashkeel) are left out of the drawing; the <title>s and the <desc>
# keep every text exactly as it was typed.

TATWEEL = "\u0640"
LAM = "\u0644"
ALEFS = frozenset("\u0622\u0623\u0625\u0627")
_MIRRORED = dict(zip("()[]{}<>«»‹›", ")(][}{><»«›‹", strict=True))
_BIDI_CONTROLS = frozenset(
    "\u200c\u200d\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _presentation_forms() -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """(letter, form) and (lam + alef, form) to presentation forms, from Unicode's own data."""
    forms: dict[tuple[str, str], str] = {}
    ligatures: dict[tuple[str, str], str] = {}
    for code in [*range(0xFE70, 0xFF00), *range(0xFB50, 0xFE00)]:
        tag, *bases = unicodedata.decomposition(chr(code)).split() or [""]
        if tag not in ("<isolated>", "<final>", "<initial>", "<medial>"):
            continue
        letters = "".join(chr(int(base, 16)) for base in bases)
        if len(letters) == 1:
            forms.setdefault((letters, tag[1:-1]), chr(code))
        elif len(letters) == 2 and letters[0] == LAM and letters[1] in ALEFS:
            ligatures.setdefault((letters, tag[1:-1]), chr(code))
    return forms, ligatures


_FORMS, _LIGATURES = _presentation_forms()


def _joins_next(ch: str) -> bool:
    return ch == TATWEEL or (ch, "initial") in _FORMS


def _joins_previous(ch: str) -> bool:
    return ch == TATWEEL or (ch, "final") in _FORMS


def _is_tashkeel(ch: str) -> bool:
    return unicodedata.category(ch) == "Mn" and (
        "\u0610" <= ch <= "\u061a" or "\u064b" <= ch <= "\u06ed" or "\u08d3" <= ch <= "\u08ff"
    )


def shape_arabic(text: str) -> str:
    """Arabic letters replaced by their contextual presentation forms (lam-alef joined)."""
    letters = [ch for ch in text if ch not in _BIDI_CONTROLS and not _is_tashkeel(ch)]
    shaped = []
    index = 0
    while index < len(letters):
        ch = letters[index]
        before = letters[index - 1] if index else ""
        after = letters[index + 1] if index + 1 < len(letters) else ""
        joined_before = bool(before) and _joins_next(before) and _joins_previous(ch)
        if ch == LAM and after in ALEFS:
            ligature = _LIGATURES.get((ch + after, "final" if joined_before else "isolated"))
            if ligature:
                shaped.append(ligature)
                index += 2
                continue
        joined_after = bool(after) and _joins_next(ch) and _joins_previous(after)
        if joined_before:
            form = "medial" if joined_after else "final"
        else:
            form = "initial" if joined_after else "isolated"
        shaped.append(_FORMS.get((ch, form)) or _FORMS.get((ch, "isolated")) or ch)
        index += 1
    return "".join(shaped)


def _resolve_weak(types: list[str], base: str) -> None:
    """Rules W1 to W7 of the Unicode bidi algorithm (one paragraph, no embeddings)."""
    edge = "R" if base == "rtl" else "L"
    strong = edge
    for i in range(len(types)):
        if types[i] == "NSM":  # W1
            types[i] = types[i - 1] if i else edge
        if types[i] in ("L", "R", "AL"):
            strong = types[i]
        elif types[i] == "EN" and strong == "AL":  # W2
            types[i] = "AN"
    types[:] = ["R" if kind == "AL" else kind for kind in types]  # W3
    _resolve_numbers(types, edge)


def _resolve_numbers(types: list[str], edge: str) -> None:
    """W4 to W7: separators and terminators around numbers."""
    for i in range(1, len(types) - 1):  # W4
        left, right = types[i - 1], types[i + 1]
        if left == right and (
            (types[i] == "ES" and left == "EN") or (types[i] == "CS" and left in ("EN", "AN"))
        ):
            types[i] = left
    for i, kind in enumerate(types):  # W5: terminators next to European numbers
        if kind != "ET":
            continue
        end = i
        while end < len(types) and types[end] == "ET":
            end += 1
        if (i and types[i - 1] == "EN") or (end < len(types) and types[end] == "EN"):
            types[i:end] = ["EN"] * (end - i)
    types[:] = ["ON" if kind in ("ES", "ET", "CS") else kind for kind in types]  # W6
    strong = edge
    for i, kind in enumerate(types):  # W7
        if kind in ("L", "R"):
            strong = kind
        elif kind == "EN" and strong == "L":
            types[i] = "L"


def visual_order(text: str, base: str) -> str:
    """`text` reordered as displayed in a paragraph of direction `base` ("ltr" or "rtl"),
    following the Unicode bidi algorithm for one line without explicit embeddings."""
    types = [unicodedata.bidirectional(ch) or "L" for ch in text]
    _resolve_weak(types, base)
    edge = "R" if base == "rtl" else "L"
    strong = ["R" if kind in ("EN", "AN") else kind for kind in types]
    for i, kind in enumerate(strong):  # N1, N2: neutrals between two sides
        if kind in ("L", "R") or (i and strong[i - 1] not in ("L", "R")):
            continue
        end = i
        while end < len(strong) and strong[end] not in ("L", "R"):
            end += 1
        before = strong[i - 1] if i else edge
        after = strong[end] if end < len(strong) else edge
        types[i:end] = [before if before == after else edge] * (end - i)
    base_level = 1 if base == "rtl" else 0
    levels = []
    for kind in types:  # I1, I2
        if base_level == 0:
            levels.append({"R": 1, "AN": 2, "EN": 2}.get(kind, 0))
        else:
            levels.append(2 if kind in ("L", "EN", "AN") else 1)
    end = len(text)
    while end and unicodedata.bidirectional(text[end - 1]) in ("WS", "S", "B"):  # L1
        end -= 1
        levels[end] = base_level
    chars = [
        _MIRRORED.get(ch, ch) if level % 2 else ch for ch, level in zip(text, levels, strict=True)
    ]
    for level in range(max(levels, default=0), 0, -1):  # L2
        i = 0
        while i < len(chars):
            if levels[i] < level:
                i += 1
                continue
            end = i
            while end < len(chars) and levels[end] >= level:
                end += 1
            chars[i:end] = chars[i:end][::-1]
            levels[i:end] = levels[i:end][::-1]
            i = end
    return "".join(chars)


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


# SVG writing ----------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A coordinate rounded to one decimal, written without a useless `.0`."""
    rounded = round(value + 0.0, 1) + 0.0
    text = f"{rounded:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attrs(attrs: Sequence[tuple[str, Any]]) -> str:
    parts = []
    for name, value in attrs:
        if value is None:
            continue
        shown = (
            _num(value) if isinstance(value, float | int) and not isinstance(value, bool) else value
        )
        parts.append(f' {name}="{escape(shown)}"')
    return "".join(parts)


class _Canvas:
    """Collects SVG elements; x is given from the chart's start edge and mirrored in RTL."""

    def __init__(self, width: float, rtl: bool) -> None:
        self.width = width
        self.rtl = rtl
        self.direction = "rtl" if rtl else "ltr"
        self.parts: list[str] = []

    def raw(self, text: str) -> None:
        self.parts.append(text)

    def x(self, logical: float) -> float:
        return self.width - logical if self.rtl else logical

    def rect(
        self, x: float, y: float, width: float, height: float, fill: str, *extra: tuple[str, Any]
    ) -> str:
        left = self.width - x - width if self.rtl else x
        return (
            f"<rect{_attrs([('x', left), ('y', y), ('width', width), ('height', height)])}"
            f"{_attrs([('fill', fill), *extra])}"
        )

    def add_rect(
        self,
        x: float,
        y: float,
        width: float,
        height: float,
        fill: str,
        *extra: tuple[str, Any],
        title: str | None = None,
    ) -> None:
        opening = self.rect(x, y, width, height, fill, *extra)
        if title is None:
            self.parts.append(opening + "/>")
        else:
            self.parts.append(f"{opening}><title>{escape(_plain(title))}</title></rect>")

    def add_line(self, x1: float, y1: float, x2: float, y2: float, *attrs: tuple[str, Any]) -> None:
        coords = [("x1", self.x(x1)), ("y1", y1), ("x2", self.x(x2)), ("y2", y2)]
        self.parts.append(f"<line{_attrs([*coords, *attrs])}/>")

    def add_text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float,
        align: str = "start",
        fill: str = INK,
        bold: bool = False,
        css_class: str | None = None,
    ) -> None:
        """`align` is logical: "start" is the chart's start edge (left, or right in RTL).

        Every text is set left to right with a physical anchor, the same in both renderers;
        right-to-left text arrives in visual order (see `visual_order`)."""
        text = _plain(text)
        extra: list[tuple[str, Any]] = []
        if has_rtl(text):
            text = visual_order(shape_arabic(text), _direction(text, self.direction))
            extra.append(("unicode-bidi", "bidi-override"))
        if align == "middle":
            anchor = "middle"
        else:
            anchor = "start" if (align == "start") != self.rtl else "end"
        attrs = [
            ("class", css_class),
            ("x", self.x(x)),
            ("y", y),
            ("font-size", size),
            ("font-weight", "bold" if bold else None),
            ("fill", fill),
            ("direction", "ltr"),
            *extra,
            ("text-anchor", anchor),
        ]
        self.parts.append(f"<text{_attrs(attrs)}>{escape(text)}</text>")

    def svg(self, height: float, id_prefix: str, title: str, desc: str, css_class: str) -> Markup:
        head = _attrs(
            [
                ("xmlns", "http://www.w3.org/2000/svg"),
                ("class", f"vote-chart {css_class}"),
                ("role", "img"),
                ("aria-labelledby", f"{id_prefix}-title {id_prefix}-desc"),
                ("viewBox", f"0 0 {_num(self.width)} {_num(height)}"),
                ("width", "100%"),
                ("direction", self.direction),
                ("font-family", FONT_FAMILY),
            ]
        )
        body = "".join(self.parts)
        return Markup(  # noqa: S704 — every value above went through escape()
            f"<svg{head}>"
            f'<title id="{escape(id_prefix)}-title">{escape(_plain(title))}</title>'
            f'<desc id="{escape(id_prefix)}-desc">{escape(_plain(desc))}</desc>'
            f"{body}</svg>"
        )


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _prefix(id_prefix: str | None, kind: str, data: Any) -> str:
    if id_prefix is None:
        return f"{kind}-{hashlib.sha256(repr(data).encode()).hexdigest()[:10]}"
    if not _ID.match(id_prefix):
        raise ValueError(f"id_prefix must be a letter then letters, digits, - or _: {id_prefix!r}")
    return id_prefix


def _place(start: float, end: float, needed: float, avoid: float | None) -> float | None:
    """Where to centre a text `needed` wide in [start, end], clear of the line at `avoid`."""
    centre = (start + end) / 2
    if needed > end - start:
        return None
    if avoid is None or abs(avoid - centre) >= needed / 2 + 3:
        return centre
    sides = sorted([(start, avoid - 3), (avoid + 3, end)], key=lambda side: side[0] - side[1])
    for low, high in sides:  # the wider side first
        if high - low >= needed:
            return (low + high) / 2
    return None


def _segments(
    canvas: _Canvas,
    x: float,
    y: float,
    width: float,
    parts: Sequence[tuple[str, int, str]],
    *,
    percent_format: Callable[[float], str],
    empty_label: str = "",
    avoid: float | None = None,
) -> None:
    """One stacked bar: (title, count, fill) segments in order from the start edge, each
    with its percentage where it fits (moved aside from the line at `avoid`, if any)."""
    if any(count < 0 for _, count, _ in parts):
        raise ValueError("A count cannot be negative")
    total = sum(count for _, count, _ in parts)
    if total <= 0:
        canvas.add_rect(
            x + 0.5,
            y + 0.5,
            width - 1,
            BAR_HEIGHT - 1,
            EMPTY,
            ("stroke", OUTLINE),
            ("stroke-width", 1),
            ("class", "empty"),
        )
        if empty_label:
            canvas.add_text(
                x + 10,
                y + BAR_HEIGHT / 2 + SMALL_SIZE * 0.36,
                empty_label,
                size=SMALL_SIZE,
                fill=MUTED,
                css_class="empty-text",
            )
        return
    running = 0
    edges = [round(x, 1)]
    for _, count, _ in parts:
        running += count
        edges.append(round(x + width * running / total, 1))
    drawn: list[float] = []
    for (name, count, fill), start, end in zip(parts, edges, edges[1:], strict=False):
        if count <= 0:
            continue
        percent = 100 * count / total
        canvas.add_rect(
            start,
            y,
            round(end - start, 1),
            BAR_HEIGHT,
            fill,
            ("class", "segment"),
            title=f"{name} — {count} ({percent_format(percent)})",
        )
        label = percent_format(percent)
        needed = text_width(label, SMALL_SIZE, bold=True) + 2 * SEGMENT_PADDING
        centre = _place(start, end, needed, avoid)
        if centre is not None:
            canvas.add_text(
                centre,
                y + BAR_HEIGHT / 2 + SMALL_SIZE * 0.36,
                label,
                size=SMALL_SIZE,
                align="middle",
                fill=text_colour_on(fill),
                bold=True,
                css_class="segment-text",
            )
        drawn.append(end)
    for edge in drawn[:-1]:  # hairlines between segments, so that neighbours stay apart
        canvas.add_line(edge, y, edge, y + BAR_HEIGHT, ("stroke", WHITE), ("stroke-width", 1))


def _legend(canvas: _Canvas, y: float, entries: Sequence[tuple[str, str]], width: float) -> float:
    """Swatch and label per entry, flowing from the start edge; returns the y below it."""
    swatch, gap, spacing, row = 12, 6, 18, 20
    x: float = MARGIN
    for text, fill in entries:
        needed = swatch + gap + text_width(text, SMALL_SIZE)
        if x > MARGIN and x + needed > MARGIN + width:
            x = MARGIN
            y += row
        canvas.add_rect(x, y, swatch, swatch, fill, ("class", "swatch"))
        canvas.add_text(x + swatch + gap, y + 10.5, text, size=SMALL_SIZE, css_class="legend")
        x += needed + spacing
    return y + row


# The charts -----------------------------------------------------------------------------------

DescribeMerit = Callable[[str, str | None, list[tuple[str, int, float]]], str]


def merit_profile(
    options: Sequence[Any],
    grades: Sequence[tuple[str, str]],
    *,
    rtl: bool = False,
    title: str = "Merit profiles",
    describe: DescribeMerit = describe_merit,
    caption: Callable[[str], str] | None = majority_caption,
    percent_format: Callable[[float], str] = format_percent,
    empty_label: str = "No votes",
    id_prefix: str | None = None,
    width: int = WIDTH,
) -> Markup:
    """Majority judgment merit profiles: one stacked bar per option, grades best first.

    `options`: dicts or objects with `label` (user text, escaped here), `tally` (counts in
    the order of `grades`) and `majority_grade` (an index into `grades`, or None when nobody
    voted). `grades`: (key of GRADE_COLOURS, translated label) pairs, best first.
    `describe(label, majority_label, [(grade_label, count, percent)])` writes one sentence of
    the text description per option; `caption(majority_label)` the words shown beside each
    label (None: nothing shown); `percent_format(percent)` the numbers in the bars and the
    "50 %" of the median line; `empty_label` what an option nobody graded shows in its bar.
    """
    grade_labels = [_plain(label) for _, label in grades]
    colours = [GRADE_COLOURS.get(key, FALLBACK_COLOUR) for key, _ in grades]
    rows = []
    for option in options:
        tally = [int(count) for count in _field(option, "tally")]
        if len(tally) != len(grades):
            raise ValueError(f"A tally of {len(tally)} counts for {len(grades)} grades")
        majority_index = _field(option, "majority_grade")
        majority = None if majority_index is None or not sum(tally) else majority_index
        rows.append((_plain(_field(option, "label")), tally, majority))
    prefix = _prefix(id_prefix, "merit", (rows, grade_labels, rtl, title))

    canvas = _Canvas(width, rtl)
    bar_width = width - 2 * MARGIN
    middle = MARGIN + bar_width / 2
    y = 8.0
    sentences = []
    for label, tally, majority in rows:
        total = sum(tally)
        majority_label = grade_labels[majority] if majority is not None else None
        parts = [
            (grade, count, 100 * count / total if total else 0.0)
            for grade, count in zip(grade_labels, tally, strict=True)
        ]
        sentences.append(_plain(describe(label, majority_label, parts)))

        shown = _plain(caption(majority_label)) if caption and majority_label else ""
        room: float = bar_width
        if shown:
            if text_width(shown, SMALL_SIZE) > bar_width * 0.55 - 16:
                shown = _truncate(shown, bar_width * 0.55 - 16, SMALL_SIZE, False)
            room = bar_width - text_width(shown, SMALL_SIZE) - 16
        lines = wrap(label, room, LABEL_SIZE, bold=True, lines=MAX_LABEL_LINES)
        canvas.raw(f'<g class="option"><title>{escape(label)}</title>')
        for number, line in enumerate(lines):
            baseline = y + LABEL_SIZE + number * LABEL_LEADING
            canvas.add_text(MARGIN, baseline, line, size=LABEL_SIZE, bold=True, css_class="label")
        if shown:
            canvas.add_text(
                MARGIN + bar_width,
                y + LABEL_SIZE,
                shown,
                size=SMALL_SIZE,
                align="end",
                fill=MUTED,
                css_class="majority",
            )
        top = y + len(lines) * LABEL_LEADING + 6
        segments = [
            (grade, count, colour)
            for grade, count, colour in zip(grade_labels, tally, colours, strict=True)
        ]
        _segments(
            canvas,
            MARGIN,
            top,
            bar_width,
            segments,
            percent_format=percent_format,
            empty_label=_plain(empty_label),
            avoid=middle,
        )
        canvas.raw("</g>")
        # The median: a dark dashed line on a white halo, readable over every colour.
        canvas.add_line(
            middle, top - 4, middle, top + BAR_HEIGHT + 4, ("stroke", WHITE), ("stroke-width", 4)
        )
        canvas.add_line(
            middle,
            top - 4,
            middle,
            top + BAR_HEIGHT + 4,
            ("class", "median"),
            ("stroke", INK),
            ("stroke-width", 2),
            ("stroke-dasharray", "5 3"),
        )
        y = top + BAR_HEIGHT + 18
    if rows:  # the median line's label, under the last bar
        bottom = y - 18
        canvas.add_text(
            middle,
            bottom + 4 + 13,
            percent_format(50),
            size=12,
            align="middle",
            css_class="median-label",
        )
        y = bottom + 4 + 13 + 14
    y = _legend(canvas, y, list(zip(grade_labels, colours, strict=True)), bar_width)
    return canvas.svg(y + 2, prefix, _plain(title), " ".join(sentences), "merit-profile")


def approval_bars(
    options: Sequence[Any],
    participants: int,
    *,
    rtl: bool = False,
    title: str = "Approvals",
    describe: Callable[[str, int, int, float], str] = describe_approval,
    value_format: Callable[[int, float], str] = approval_value,
    empty_label: str = "No votes",
    id_prefix: str | None = None,
    width: int = WIDTH,
) -> Markup:
    """One bar per option, its length the share of participants who approved it.

    `options`: dicts or objects with `label` and `approvals`; `participants` is the number of
    ballots (the 100 % of every bar). `value_format(approvals, percent)` is written at the end
    of each bar; `describe(label, approvals, participants, percent)` writes one sentence of
    the text description per option; `empty_label` fills the bars while nobody took part.
    """
    rows = [(_plain(_field(o, "label")), int(_field(o, "approvals"))) for o in options]
    prefix = _prefix(id_prefix, "approval", (rows, participants, rtl, title))
    canvas = _Canvas(width, rtl)
    bar_width = width - 2 * MARGIN
    y = 8.0
    sentences = []
    for label, approvals in rows:
        percent = 100 * approvals / participants if participants > 0 else 0.0
        sentences.append(_plain(describe(label, approvals, participants, percent)))
        lines = wrap(label, bar_width, LABEL_SIZE, bold=True, lines=MAX_LABEL_LINES)
        canvas.raw(f'<g class="option"><title>{escape(label)}</title>')
        for number, line in enumerate(lines):
            baseline = y + LABEL_SIZE + number * LABEL_LEADING
            canvas.add_text(MARGIN, baseline, line, size=LABEL_SIZE, bold=True, css_class="label")
        top = y + len(lines) * LABEL_LEADING + 6
        value = _plain(value_format(approvals, percent))
        baseline = top + BAR_HEIGHT / 2 + SMALL_SIZE * 0.36
        if participants <= 0:
            canvas.add_rect(
                MARGIN + 0.5,
                top + 0.5,
                bar_width - 1,
                BAR_HEIGHT - 1,
                EMPTY,
                ("stroke", OUTLINE),
                ("stroke-width", 1),
                ("class", "empty"),
            )
            shown = _plain(empty_label) or value
            canvas.add_text(
                MARGIN + 10, baseline, shown, size=SMALL_SIZE, fill=MUTED, css_class="empty-text"
            )
        else:
            canvas.add_rect(MARGIN, top, bar_width, BAR_HEIGHT, TRACK, ("class", "track"))
            length = round(bar_width * min(1.0, max(0.0, approvals / participants)), 1)
            if length > 0:
                canvas.add_rect(MARGIN, top, length, BAR_HEIGHT, APPROVAL_COLOUR, ("class", "bar"))
            needed = text_width(value, SMALL_SIZE, bold=True) + 2 * SEGMENT_PADDING
            inside = bar_width - length < needed
            canvas.add_text(
                MARGIN + length + (-SEGMENT_PADDING if inside else SEGMENT_PADDING + 2),
                baseline,
                value,
                size=SMALL_SIZE,
                align="end" if inside else "start",
                fill=text_colour_on(APPROVAL_COLOUR) if inside else INK,
                bold=True,
                css_class="value",
            )
        canvas.raw("</g>")
        y = top + BAR_HEIGHT + 16
    return canvas.svg(y - 6, prefix, _plain(title), " ".join(sentences), "approval-bars")


def yes_no_bar(
    yes: int,
    no: int,
    abstain: int,
    labels: tuple[str, str, str] = ("For", "Against", "Abstain"),
    *,
    rtl: bool = False,
    title: str = "For, against, abstain",
    describe: Callable[[list[tuple[str, int, float]]], str] = describe_yes_no,
    percent_format: Callable[[float], str] = format_percent,
    empty_label: str = "No votes",
    id_prefix: str | None = None,
    width: int = WIDTH,
) -> Markup:
    """One stacked bar of for, against and abstain (in that order from the start edge), each
    with its percentage of all ballots; the legend gives each colour's label and count."""
    counts = (int(yes), int(no), int(abstain))
    names = tuple(_plain(label) for label in labels)
    prefix = _prefix(id_prefix, "yes-no", (counts, names, rtl, title))
    total = sum(counts)
    parts = [
        (name, count, 100 * count / total if total else 0.0)
        for name, count in zip(names, counts, strict=True)
    ]
    canvas = _Canvas(width, rtl)
    bar_width = width - 2 * MARGIN
    top = 8.0
    canvas.raw('<g class="option">')
    _segments(
        canvas,
        MARGIN,
        top,
        bar_width,
        list(zip(names, counts, YES_NO_COLOURS, strict=True)),
        percent_format=percent_format,
        empty_label=_plain(empty_label),
    )
    canvas.raw("</g>")
    entries = [
        (f"{name} ({count})", colour)
        for name, count, colour in zip(names, counts, YES_NO_COLOURS, strict=True)
    ]
    y = _legend(canvas, top + BAR_HEIGHT + 12, entries, bar_width)
    return canvas.svg(y + 2, prefix, _plain(title), describe(parts), "yes-no-bar")
