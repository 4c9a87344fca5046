"""The public ballot box, format ``voix-ballots/1``: read it to recount, write it to publish.

A ballot box is one JSON object (UTF-8)::

    {
      "format": "voix-ballots/1",
      "vote": {"title": "…", "method": "majority_judgment", "options": [{"id": "p12", …}],
               "grades": ["Excellent", …, "À rejeter"], "participants": 21},
      "ballots": [{"receipt": "7F3K9Q2M", "choices": {"p12": "Bien"}}],
      "tallies": {"p12": [3, 5, 4, 2, 1, 0, 0]}
    }

- ``grades`` (majority judgment only) are listed best first, and so are the counts of a tally.
- ``ballots`` are the electronic ballots, ``tallies`` the paper counts added on top; either may
  be absent (or null). Choices by method: majority judgment ``{"p12": "Bien"}`` (an option left
  out counts as the lowest grade); approval ``["p12", "p14"]`` (the approved options);
  yes_no_abstain ``{"p12": "yes" | "no" | "abstain"}`` on its only option.
- Tallies by method: majority judgment ``{"p12": [counts best first]}``; approval
  ``{"p12": 7}`` (approvals); yes_no_abstain ``{"p12": [yes, no, abstain]}``.
- Receipts: either every ballot carries its ``receipt`` (the vote publishes content), or
  none does and the top-level ``receipts`` lists the codes, sorted (inclusion only; a code
  may repeat, as two ballots can draw the same). A recount checks that shape but counts
  nothing from receipts, not even how many there are.
- The rule, optional in ``vote``: ``quorum`` (minimum participants, any method),
  ``threshold`` (yes/no: majority, three_fifths or two_thirds; default majority),
  ``adopt_grade`` (majority judgment: options whose majority grade is this label or better)
  ``adopt_top`` (majority judgment, approval: the first N ranks) and ``adopt_majority``
  (approval: ``true`` when options approved by more than half of the participants are
  adopted). Without one of these a recount ranks majority judgment and approval options but
  adopts none; yes/no always has a rule. ``withdrawn`` lists the options hidden by moderation
  while the vote was open: they keep their rank but are never adopted, and "the first N" are
  counted without them.

Participants. The vote declares ``participants``, but the recount takes
max(declared, electronic ballots + the largest paper count of any one option): every
electronic ballot is a participant, and each option's paper count is a lower bound of the
paper voters (one counted at most once per option, maybe not at all if they left it blank).
A declared number below that cannot be the number of people who took part (an export may
declare only the electronic ones), so the evidence wins. Whoever is missing from an option's
count is then counted at its lowest grade (majority judgment) or not at all (approval,
yes/no, where they still count towards the quorum). A yes/no ballot without a choice is a
participant who said neither yes, no nor abstain.

Strictness. Anything the format does not name is refused, not skipped: a misspelt
"tally" silently ignored would change a result. JSON objects with a repeated key are refused
too, since parsers disagree on which value wins. Problems are reported in this order,
whatever the order of keys in the file: format, vote, then ballots, receipts and tallies
(a JSON syntax error stops the reading, so it is reported where it is met).

Reading streams (see `count`): the file is decoded in chunks and each ballot is decoded on its
own by the json module's C scanner, then dropped once counted, so memory does not grow with
the number of ballots. One value (a ballot, the vote, the tallies) may be at most
`MAX_VALUE` characters.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from json.scanner import make_scanner
from typing import Any, BinaryIO, cast

from votes import counting
from votes.scales import (
    APPROVAL,
    MAJORITY_JUDGMENT,
    METHOD_LABELS,
    METHODS,
    THRESHOLDS,
    YES_NO_ABSTAIN,
    YES_NO_CHOICES,
)

FORMAT = "voix-ballots/1"
CHUNK = 1 << 20  # bytes read at a time
MAX_VALUE = 64 << 20  # the longest single value read ahead before a syntax error is final
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, and nothing more
_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
_VOTE_KEYS = (
    "title",
    "method",
    "options",
    "grades",
    "participants",
    "quorum",
    "threshold",
    "adopt_grade",
    "adopt_top",
    "adopt_majority",
    "withdrawn",
)
_BALLOT_KEYS = {"receipt", "choices"}

Tally = tuple[int, ...] | int  # counts best first, [yes, no, abstain], or approvals


class BallotBoxError(ValueError):
    """The file is not a valid voix-ballots/1 ballot box; the message says what and where."""


# The vote: what the ballots are written in, and the rule.


@dataclass(frozen=True)
class Option:
    id: str
    label: str


@dataclass(frozen=True)
class _Vote:
    title: str
    method: str
    options: tuple[Option, ...]
    grades: tuple[str, ...]
    participants: int | None
    quorum: int | None
    threshold: str | None
    adopt_grade: str | None
    adopt_top: int | None
    adopt_majority: bool | None
    withdrawn: tuple[str, ...]

    @cached_property
    def ids(self) -> frozenset[str]:
        return frozenset(option.id for option in self.options)

    @cached_property
    def order(self) -> tuple[str, ...]:
        return tuple(option.id for option in self.options)

    def as_dict(self) -> dict[str, Any]:
        """The canonical form, keys in the format's order, absent fields left out."""
        values: dict[str, Any] = {
            "title": self.title,
            "method": self.method,
            "options": [{"id": o.id, "label": o.label} for o in self.options],
            "grades": list(self.grades) if self.method == MAJORITY_JUDGMENT else None,
            "participants": self.participants,
            "quorum": self.quorum,
            "threshold": self.threshold,
            "adopt_grade": self.adopt_grade,
            "adopt_top": self.adopt_top,
            "adopt_majority": self.adopt_majority,
            "withdrawn": list(self.withdrawn) or None,
        }
        return {key: value for key, value in values.items() if value is not None}


# More than anyone could vote: beyond it a number is an error, not a count (and Python would
# refuse to print an integer of more than 4,300 digits).
COUNT_MAX = 10**12


def _is_count(value: Any, minimum: int = 0) -> bool:
    # bool is an int in Python, never in a ballot box.
    return type(value) is int and minimum <= value <= COUNT_MAX


def _text(value: Any, what: str) -> str:
    """A string that can be printed: JSON's \\ud800 escapes can make lone surrogates."""
    if not isinstance(value, str):
        raise BallotBoxError(f"{what} is not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BallotBoxError(f"{what} holds an unpaired surrogate (\\ud800-\\udfff)") from None
    return value


def _read_vote(raw: Any) -> _Vote:
    if not isinstance(raw, dict):
        raise BallotBoxError("the vote is not a JSON object")
    for key in raw:
        if key not in _VOTE_KEYS:
            raise BallotBoxError(f"unknown key {key!r} in the vote")
    if "title" not in raw:
        raise BallotBoxError("the vote's title is missing")
    title = _text(raw["title"], "the vote's title")
    method = raw.get("method")
    if method not in METHODS:
        expected = ", ".join(METHODS)
        raise BallotBoxError(f"method {method!r} is not supported (expected one of {expected})")
    options = _read_options(raw.get("options"), method)
    grades = _read_grades(raw.get("grades"), method)
    vote = _Vote(
        title=title,
        method=method,
        options=options,
        grades=grades,
        participants=_optional_count(raw, "participants", 0),
        quorum=_optional_count(raw, "quorum", 0),
        threshold=_read_threshold(raw.get("threshold"), method),
        adopt_grade=_read_adopt_grade(raw.get("adopt_grade"), method, grades),
        adopt_top=_read_adopt_top(raw.get("adopt_top"), method),
        adopt_majority=_read_adopt_majority(raw.get("adopt_majority"), method),
        withdrawn=_read_withdrawn(raw.get("withdrawn"), options),
    )
    if vote.adopt_top is not None and vote.adopt_top >= len(vote.options):
        raise BallotBoxError(
            f"adopt_top {vote.adopt_top} would adopt every one of the {len(vote.options)} options"
        )
    if vote.adopt_top is not None and vote.adopt_majority:
        raise BallotBoxError("adopt_top and adopt_majority are two rules: a vote has one")
    return vote


def _read_options(raw: Any, method: str) -> tuple[Option, ...]:
    if not isinstance(raw, list) or not raw:
        raise BallotBoxError("the vote's options are missing or not a non-empty list")
    options: dict[str, Option] = {}
    for number, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or set(entry) != {"id", "label"}:
            raise BallotBoxError(f"option {number} is not an object with an id and a label")
        option_id, label = entry["id"], entry["label"]
        if not isinstance(option_id, str) or not option_id or not isinstance(label, str):
            raise BallotBoxError(f"option {number}: id and label must be strings (id not empty)")
        _text(option_id, f"option {number}'s id")
        _text(label, f"option {number}'s label")
        if option_id in options:
            raise BallotBoxError(f"option {option_id!r} is declared twice")
        options[option_id] = Option(option_id, label)
    if method == YES_NO_ABSTAIN and len(options) != 1:
        raise BallotBoxError(f"a yes_no_abstain vote has exactly one option, not {len(options)}")
    return tuple(options.values())


def _read_grades(raw: Any, method: str) -> tuple[str, ...]:
    if method != MAJORITY_JUDGMENT:
        if raw:  # an empty list or null says nothing, and is harmless
            raise BallotBoxError(f"grades are given, but {method} votes have none")
        return YES_NO_CHOICES if method == YES_NO_ABSTAIN else ()
    if not isinstance(raw, list) or len(raw) < 2:
        raise BallotBoxError("the vote's grades are missing (a list of at least two labels)")
    if not all(isinstance(grade, str) and grade for grade in raw):
        raise BallotBoxError("the vote's grades must be non-empty strings")
    for grade in raw:
        _text(grade, "a grade")
    if len(set(raw)) != len(raw):
        raise BallotBoxError("a grade is listed twice in the vote's grades")
    return tuple(raw)


def _optional_count(raw: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = raw.get(key)
    if value is not None and not _is_count(value, minimum):
        raise BallotBoxError(
            f"the vote's {key} must be a whole number from {minimum} to {COUNT_MAX:,}"
        )
    return value


def _read_threshold(raw: Any, method: str) -> str | None:
    if raw is None:
        return None
    if method != YES_NO_ABSTAIN:
        raise BallotBoxError(f"threshold applies to yes_no_abstain votes only, not {method}")
    if raw not in THRESHOLDS:
        raise BallotBoxError(f"threshold {raw!r} is not one of {', '.join(THRESHOLDS)}")
    return str(raw)


def _read_adopt_grade(raw: Any, method: str, grades: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    if method != MAJORITY_JUDGMENT:
        raise BallotBoxError(f"adopt_grade applies to majority judgment only, not {method}")
    if raw not in grades:
        raise BallotBoxError(f"adopt_grade {raw!r} is not in the vote's grades")
    return str(raw)


def _read_adopt_top(raw: Any, method: str) -> int | None:
    if raw is None:
        return None
    if method == YES_NO_ABSTAIN:
        raise BallotBoxError("adopt_top does not apply to a yes_no_abstain vote")
    if not _is_count(raw, 1):
        raise BallotBoxError("the vote's adopt_top must be a whole number of at least 1")
    return int(raw)


def _read_withdrawn(raw: Any, options: tuple[Option, ...]) -> tuple[str, ...]:
    """Options hidden by moderation while the vote was open: ranked, never adopted."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(option, str) for option in raw):
        raise BallotBoxError("the vote's withdrawn options must be a list of option ids")
    declared = {option.id for option in options}
    for option in raw:
        if option not in declared:
            raise BallotBoxError(f"withdrawn option {option!r} is not declared")
    if len(set(raw)) != len(raw):
        raise BallotBoxError("an option is listed twice as withdrawn")
    return tuple(option.id for option in options if option.id in raw)


def _read_adopt_majority(raw: Any, method: str) -> bool | None:
    """Approval's default rule: adopted when approved by more than half of the participants."""
    if raw is None:
        return None
    if method != APPROVAL:
        raise BallotBoxError(f"adopt_majority applies to approval only, not {method}")
    if raw is not True:
        raise BallotBoxError("the vote's adopt_majority must be true when present")
    return True


def _read_tallies(raw: Any, vote: _Vote) -> dict[str, Tally]:
    """Paper counts, keyed by option in the vote's order; an option left out counted none."""
    if not isinstance(raw, dict):
        raise BallotBoxError("tallies are not a JSON object")
    for option_id in raw:
        if option_id not in vote.ids:
            raise BallotBoxError(f"tallies: option {option_id!r} is not declared")
    return {
        option_id: _read_tally(option_id, raw[option_id], vote)
        for option_id in vote.order
        if option_id in raw
    }


def _read_tally(option_id: str, raw: Any, vote: _Vote) -> Tally:
    where = f"tally for {option_id!r}"
    if vote.method == APPROVAL:
        if type(raw) is not int:
            raise BallotBoxError(f"{where} is not a whole number of approvals")
        if raw < 0:
            raise BallotBoxError(f"{where} has a negative count")
        if raw > COUNT_MAX:
            raise BallotBoxError(f"{where} has a count above {COUNT_MAX:,}")
        return raw
    expected = "grades" if vote.method == MAJORITY_JUDGMENT else "choices (yes, no, abstain)"
    if not isinstance(raw, list) or len(raw) != len(vote.grades):
        size = f"{len(raw)} counts" if isinstance(raw, list) else "no list of counts"
        raise BallotBoxError(f"{where} has {size}, the vote has {len(vote.grades)} {expected}")
    if not all(type(value) is int for value in raw):
        raise BallotBoxError(f"{where} has a count that is not a whole number")
    if any(value < 0 for value in raw):
        raise BallotBoxError(f"{where} has a negative count")
    if sum(raw) > COUNT_MAX:
        raise BallotBoxError(f"{where} counts more than {COUNT_MAX:,} voters")
    return tuple(raw)


def _check_choice(vote: _Vote, option_id: Any, value: Any) -> str | None:
    """What is wrong with one mark of a ballot (majority judgment, yes/no), or None."""
    if option_id not in vote.ids:
        return f"option {option_id!r} is not declared"
    if isinstance(value, str) and value in vote.grades:
        return None
    if vote.method == YES_NO_ABSTAIN:
        return f"choice {value!r} for {option_id!r} is not yes, no or abstain"
    return f"grade {value!r} is not in the vote's grades"


# The result.


@dataclass(frozen=True)
class Result:
    """A count's outcome: the ranking, and what the file's rule adopts."""

    ranking: tuple[counting.Placed, ...]  # yes/no: its one option, tally (yes, no, abstain)
    adopted: frozenset[str] | None  # None when the file gives no rule to adopt by
    quorum_met: bool | None  # None when the file sets no quorum
    yes_no: counting.YesNo | None = None


@dataclass(frozen=True)
class Count:
    """What a ballot box adds up to (see the module's docstring for participants)."""

    format: str
    title: str
    method: str
    options: tuple[Option, ...]
    grades: tuple[str, ...]  # majority judgment: best first; yes/no: yes, no, abstain
    participants: int
    declared_participants: int | None
    ballots: int  # electronic ballots
    tallies: dict[str, Tally]  # electronic and paper together, before padding
    quorum: int | None = None
    threshold: str | None = None
    adopt_grade: str | None = None
    adopt_top: int | None = None
    adopt_majority: bool | None = None
    withdrawn: frozenset[str] = frozenset()

    def result(self) -> Result:
        quorum_met = None if self.quorum is None else self.participants >= self.quorum
        decided = counting.outcome(
            self.method,
            self.tallies,
            self.participants,
            quorum=self.quorum,
            threshold=self.threshold,
            min_grade=None if self.adopt_grade is None else self.grades.index(self.adopt_grade),
            top=self.adopt_top,
            majority=bool(self.adopt_majority),
            withdrawn=self.withdrawn,
        )
        if decided.yes_no is not None:
            quorum_met = decided.yes_no.quorum_met
        return Result(tuple(decided.ranking), decided.adopted, quorum_met, decided.yes_no)

    def as_json(self) -> dict[str, Any]:
        """What `voix recount --json` prints."""
        return self._printed(self.result())

    def _printed(self, result: Result) -> dict[str, Any]:
        printed: dict[str, Any] = {
            "format": self.format,
            "method": self.method,
            "participants": self.participants,
            "ballots": self.ballots,
        }
        if self.quorum is not None and self.method != YES_NO_ABSTAIN:
            printed["quorum_met"] = result.quorum_met
        printed["ranking"] = [self._entry(placed, result) for placed in result.ranking]
        return printed

    def _entry(self, placed: counting.Placed, result: Result) -> dict[str, Any]:
        labels = {option.id: option.label for option in self.options}
        entry: dict[str, Any] = {
            "option": placed.option,
            "label": labels[placed.option],
            "rank": placed.rank,
        }
        if self.method == MAJORITY_JUDGMENT:
            grade = placed.majority_grade
            entry["majority_grade"] = None if grade is None else self.grades[grade]
            entry["tally"] = list(placed.tally)
        elif self.method == APPROVAL:
            entry["approvals"] = placed.tally[0]
        else:
            entry.update(zip(YES_NO_CHOICES, placed.tally, strict=True))
            entry["quorum_met"] = result.quorum_met
        if result.adopted is not None:
            entry["adopted"] = placed.option in result.adopted
        return entry

    def as_text(self) -> str:
        """A readable ranking, one line per option, for the terminal."""
        result = self.result()
        lines = [
            self.title,
            f"{METHOD_LABELS[self.method]}: {_plural(self.participants, 'participant')}, "
            f"{_plural(self.ballots, 'electronic ballot')}",
        ]
        if self.quorum is not None:
            lines.append(f"Quorum of {self.quorum}: {'met' if result.quorum_met else 'not met'}")
        rows = [self._row(entry) for entry in self._printed(result)["ranking"]]
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def _row(self, entry: Mapping[str, Any]) -> list[str]:
        row = [f"{entry['rank']:>3}. {entry['label']}"]
        if self.method == MAJORITY_JUDGMENT:
            counts = " ".join(str(n) for n in entry["tally"])
            row += [entry["majority_grade"] or "-", f"[{counts}]"]
        elif self.method == APPROVAL:
            row.append(_plural(entry["approvals"], "approval"))
        else:
            row.append(f"yes {entry['yes']}, no {entry['no']}, abstain {entry['abstain']}")
        if "adopted" in entry:
            row.append("adopted" if entry["adopted"] else "not adopted")
        return row


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# Reading: a JSON stream whose top-level object is read key by key.


class _Refused(Exception):
    """A value that is JSON syntax but not a JSON value the format accepts."""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"key {key!r} appears twice in one object")
            seen.add(key)
    return obj


class _Reader:
    """JSON text read in chunks; each value is decoded whole by the json module's C scanner.

    `text[pos:]` is what is left to read of the current chunk. Lines are counted as chunks
    are dropped, so that an error can say where it is without keeping the file.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        # The scanner json.loads uses (in C): decodes one value at an index, says where it ends.
        decoder = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        self._scan = make_scanner(decoder)  # type: ignore[arg-type]  # typeshed wants a scanner
        self.text = ""
        self.pos = 0
        self.eof = False
        self._bytes = 0  # bytes read so far
        self._line = 1  # the line number of text[0]
        self._line_start = 0  # where that line starts in text (negative: in a dropped chunk)
        self._more()
        if self.text.startswith("\ufeff"):  # RFC 8259 lets a parser ignore a byte order mark
            self.pos = 1

    def _more(self, at_least: int = 1) -> bool:
        """Drops what was read, then reads chunks until `at_least` more characters came (or
        the end of the file); False when nothing came."""
        if self.eof:
            return False
        self._forget(self.pos)
        parts = [self.text[self.pos :]]
        added = 0
        while not self.eof and (added < at_least or len(parts) == 1):  # one chunk at least
            data = self._raw.read(CHUNK)
            self.eof = not data
            parts.append(self._decode(data))
            added += len(parts[-1])
        self.text, self.pos = "".join(parts), 0
        return added > 0

    def _decode(self, data: bytes) -> str:
        pending = len(self._utf8.getstate()[0])
        try:
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as wrong:
            offset = self._bytes - pending + wrong.start
            raise BallotBoxError(f"not UTF-8 (byte {offset})") from None
        self._bytes += len(data)
        return text

    def _forget(self, consumed: int) -> None:
        newlines = self.text.count("\n", 0, consumed)
        if newlines:
            self._line += newlines
            self._line_start = self.text.rfind("\n", 0, consumed) + 1 - consumed
        else:
            self._line_start -= consumed

    def error(self, message: str, at: int | None = None) -> BallotBoxError:
        at = self.pos if at is None else at
        newlines = self.text.count("\n", 0, at)
        start = self.text.rfind("\n", 0, at) + 1 if newlines else self._line_start
        line, column = self._line + newlines, at - start + 1
        return BallotBoxError(f"not JSON (line {line}, column {column}): {message}")

    def skip(self) -> str:
        """Moves past whitespace and returns the next character, '' at the end of the file."""
        while True:
            match = _WHITESPACE.match(self.text, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self._more():
                return ""

    def expect(self, char: str, what: str) -> None:
        if self.skip() != char:
            raise self.error(f"expecting {what}")
        self.pos += 1

    def value(self) -> Any:
        """The JSON value that starts here (after whitespace), decoded whole."""
        # The common case, kept short: a value that starts right here and ends in this chunk.
        try:
            value, end = self._scan(self.text, self.pos)
        except (StopIteration, ValueError, RecursionError, _Refused):
            return self._value()  # whitespace first, a chunk boundary, or an error to locate
        if end < len(self.text):
            self.pos = end
            return value
        return self._value()

    def _value(self) -> Any:
        self.skip()
        while True:
            start = self.pos
            failure: tuple[str, int] | None = None
            try:
                value, end = self._scan(self.text, start)
            except StopIteration:
                failure = ("expecting a value", start)
            except json.JSONDecodeError as wrong:
                failure = (wrong.msg, wrong.pos)
            except _Refused as wrong:
                raise self.error(str(wrong), start) from None
            except (ValueError, RecursionError) as wrong:  # huge integers, deep nesting
                raise self.error(f"unreadable value ({wrong})", start) from None
            # A value reaching the end of the text may be cut short (a number, or a chunk
            # boundary inside a string): read on until it ends before the text does.
            if failure is None and (end < len(self.text) or self.eof):
                self.pos = end
                return value
            if self.eof or len(self.text) - start >= MAX_VALUE:
                if failure is None:
                    self.pos = end
                    return value
                raise self.error(*failure)
            # Double what is read ahead, so that a long value costs linear time.
            self._more(at_least=len(self.text) - start)

    def items(self) -> Iterator[Any]:
        """The elements of the array that starts here, one at a time."""
        self.expect("[", "'['")
        if self.skip() == "]":
            self.pos += 1
            return
        comma = _COMMA.match
        while True:
            yield self.value()
            # Most elements are followed by a comma within the chunk: one match, no call.
            after = comma(self.text, self.pos)
            if after:
                self.pos = after.end()
                continue
            char = self.skip()
            self.pos += 1
            if char == "]":
                return
            if char != ",":
                raise self.error("expecting ',' or ']'", self.pos - 1)

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; the caller reads each one's value."""
        if self.skip() == "":
            raise BallotBoxError("not JSON: the file is empty")
        self.expect("{", "a JSON object ('{')")
        char = self.skip()
        if char == "}":
            self.pos += 1
            return
        while True:
            if char != '"':
                raise self.error("expecting a key in double quotes")
            key = self.value()
            self.expect(":", "':'")
            yield key
            char = self.skip()
            self.pos += 1
            if char == "}":
                return
            if char != ",":
                raise self.error("expecting ',' or '}'", self.pos - 1)
            char = self.skip()

    def end(self) -> None:
        if self.skip() != "":
            raise self.error("extra data after the ballot box")


class _Ballots:
    """Adds up ballots as they stream past, keeping counts only.

    Choices are counted as they come, before their meaning is known: marks as
    (option, value) pairs, approvals by option. Each distinct pair is checked against the
    vote the first time it is seen: at once if the vote was read before the ballots, else
    at the end, still naming the first ballot that used it.
    """

    def __init__(self) -> None:
        self.vote: _Vote | None = None
        self.number = 0  # ballots seen
        self.marks: Counter[tuple[str, Any]] = Counter()
        self.approvals: Counter[Any] = Counter()
        self.first_mark: dict[tuple[str, Any], int] = {}
        self.first_approval: dict[Any, int] = {}
        self.first_object = self.first_list = 0  # the first ballot whose choices were so
        self.with_receipt = 0
        self.problem: str | None = None  # the first one, while the vote is not yet known

    def refuse(self, message: str) -> None:
        """A problem is raised once the vote is known (format and vote come first)."""
        if self.vote is not None:
            raise BallotBoxError(message)
        self.problem = self.problem or message

    def add(self, ballot: Any) -> None:
        self.number += 1
        # The common case, tested inline as it runs for every ballot: an object of marks,
        # with a valid receipt or none. Approval lists and any problem go the long way.
        size = len(ballot) if type(ballot) is dict else 0
        choices = ballot.get("choices") if size else None
        if type(choices) is dict and (
            size == 1 or (size == 2 and type(ballot.get("receipt")) is str)
        ):
            self.with_receipt += size - 1
            self._add_marks(choices)
        else:
            self._add_other(ballot, choices)

    def _add_other(self, ballot: Any, choices: Any) -> None:
        if type(ballot) is not dict or "choices" not in ballot:
            self.refuse(f"ballot {self.number} is not an object with choices")
        elif len(ballot) != 1 and not self._has_receipt(ballot):
            return
        elif type(choices) is list:
            self._add_approvals(choices)
        else:
            self.refuse(f"ballot {self.number}: choices are neither an object nor a list")

    def _has_receipt(self, ballot: dict[str, Any]) -> bool:
        if len(ballot) != 2 or "receipt" not in ballot:
            unknown = sorted(set(ballot) - _BALLOT_KEYS)
            self.refuse(f"ballot {self.number}: unknown key {unknown[0]!r}")
            return False
        if type(ballot["receipt"]) is not str:
            self.refuse(f"ballot {self.number}: the receipt is not a string")
            return False
        self.with_receipt += 1
        return True

    def _add_marks(self, choices: dict[str, Any]) -> None:
        if not self.first_object:
            self.first_object = self.number
            if self.vote is not None:
                self._check_kinds(self.vote)
        known = len(self.marks)
        try:
            self.marks.update(choices.items())  # the loop runs in C
        except TypeError:  # a list or an object where a grade should be: unhashable
            self.refuse(f"ballot {self.number}: a choice is not a string")
            return
        if len(self.marks) != known:  # rare: only a ballot that brings a pair never seen
            for pair in choices.items():
                self.first_mark.setdefault(pair, self.number)
                if self.vote is not None:
                    self._check_mark(pair, self.vote)

    def _add_approvals(self, choices: list[Any]) -> None:
        if not self.first_list:
            self.first_list = self.number
            if self.vote is not None:
                self._check_kinds(self.vote)
        try:
            distinct = len(set(choices))
        except TypeError:
            self.refuse(f"ballot {self.number}: an approved option is not a string")
            return
        if distinct != len(choices):
            repeated = next(item for item in choices if choices.count(item) > 1)
            self.refuse(f"ballot {self.number}: option {repeated!r} is approved twice")
            return
        known = len(self.approvals)
        self.approvals.update(choices)
        if len(self.approvals) != known:
            for option_id in choices:
                self.first_approval.setdefault(option_id, self.number)
                if self.vote is not None:
                    self._check_approval(option_id, self.vote)

    def _check_mark(self, pair: tuple[str, Any], vote: _Vote) -> None:
        wrong = _check_choice(vote, *pair)
        if wrong:
            raise BallotBoxError(f"ballot {self.first_mark[pair]}: {wrong}")

    def _check_approval(self, option_id: Any, vote: _Vote) -> None:
        if not isinstance(option_id, str) or option_id not in vote.ids:
            number = self.first_approval[option_id]
            raise BallotBoxError(f"ballot {number}: option {option_id!r} is not declared")

    def tallies(self, vote: _Vote) -> dict[str, Tally]:
        """Everything checked against the vote, then the counts of each option."""
        if self.problem:
            raise BallotBoxError(self.problem)
        self._check_kinds(vote)
        if vote.method == APPROVAL:
            for option_id in self.first_approval:
                self._check_approval(option_id, vote)
            return {option_id: self.approvals[option_id] for option_id in vote.order}
        for pair in self.first_mark:
            self._check_mark(pair, vote)
        counts = {
            option_id: [self.marks[option_id, value] for value in vote.grades]
            for option_id in vote.order
        }
        if vote.method == MAJORITY_JUDGMENT:
            for graded in counts.values():  # a ballot that left the option out: lowest grade
                graded[-1] += self.number - sum(graded)
        return {option_id: tuple(graded) for option_id, graded in counts.items()}

    def _check_kinds(self, vote: _Vote) -> None:
        if vote.method == APPROVAL and self.first_object:
            raise BallotBoxError(
                f"ballot {self.first_object}: approval choices must be a list of option ids"
            )
        if vote.method != APPROVAL and self.first_list:
            raise BallotBoxError(
                f"ballot {self.first_list}: choices must be an object of option ids for a "
                f"{vote.method} vote"
            )


class _Receipts:
    """Checks the top-level receipts as they stream past: strings, in sorted order.

    Two ballots may draw the same code (8 characters of base 32), so a code may repeat; and
    how many there are is not checked against the ballots, since nothing is counted from them.
    """

    def __init__(self) -> None:
        self.number = 0
        self.last: str | None = None
        self.problem: str | None = None

    def add(self, receipt: Any) -> None:
        self.number += 1
        if self.problem:
            return
        if not isinstance(receipt, str):
            self.problem = f"receipt {self.number} is not a string"
        elif self.last is not None and receipt < self.last:
            self.problem = f"receipts are not sorted (at receipt {self.number})"
        self.last = receipt


class _BoxReader:
    """The top-level object, key by key, in whatever order the file gives them."""

    def __init__(self, raw: BinaryIO) -> None:
        self.reader = _Reader(raw)
        self.ballots = _Ballots()
        self.seen: set[str] = set()
        self.format: Any = None
        self.raw_vote: Any = None
        self.raw_tallies: Any = None
        self.receipts: _Receipts | None = None
        self.problem: str | None = None  # the first one found before the vote was known

    def read(self) -> Count:
        for key in self.reader.members():
            if key in self.seen:
                raise self.reader.error(f"key {key!r} appears twice at the top level")
            self.seen.add(key)
            self._read(key)
        self.reader.end()
        return self._finish()

    def _read(self, key: str) -> None:
        reader = self.reader
        if key == "ballots" and reader.skip() == "[":
            for ballot in reader.items():
                self.ballots.add(ballot)
        elif key == "receipts" and reader.skip() == "[":
            self.receipts = _Receipts()
            for receipt in reader.items():
                self.receipts.add(receipt)
        elif key in ("ballots", "receipts"):
            if reader.value() is not None:
                self._refuse(f"{key} are not a JSON list")
        elif key == "format":
            self.format = reader.value()
            self._check_format()
            self._vote_if_ready()
        elif key == "vote":
            self.raw_vote = reader.value()
            self._vote_if_ready()
        elif key == "tallies":
            self.raw_tallies = reader.value()
        else:
            reader.value()
            self._refuse(f"unknown key {key!r} at the top level")

    def _refuse(self, message: str) -> None:
        if self.ballots.vote is not None:
            raise BallotBoxError(message)
        self.problem = self.problem or message

    def _check_format(self) -> None:
        if self.format != FORMAT:
            raise BallotBoxError(f"format {self.format!r} is not supported (expected {FORMAT})")

    def _vote_if_ready(self) -> None:
        # The vote is checked only once the format is known to be ours.
        if "format" in self.seen and "vote" in self.seen and self.ballots.vote is None:
            self.ballots.vote = _read_vote(self.raw_vote)

    def _finish(self) -> Count:
        if "format" not in self.seen:
            raise BallotBoxError("the format is missing (expected voix-ballots/1)")
        if "vote" not in self.seen:
            raise BallotBoxError("the vote is missing")
        # Read as soon as both format and vote were seen, so this reads nothing twice.
        vote = self.ballots.vote or _read_vote(self.raw_vote)
        if self.problem:
            raise BallotBoxError(self.problem)
        tallies = self.ballots.tallies(vote)
        self._check_receipts()
        paper = {} if self.raw_tallies is None else _read_tallies(self.raw_tallies, vote)
        return _count_of(vote, self.ballots.number, tallies, paper)

    def _check_receipts(self) -> None:
        ballots, listed = self.ballots, self.receipts
        if listed is not None:
            if listed.problem:
                raise BallotBoxError(listed.problem)
            if ballots.with_receipt:
                raise BallotBoxError("ballots carry receipts, and receipts are listed apart too")
        elif 0 < ballots.with_receipt < ballots.number:
            raise BallotBoxError(
                f"{ballots.with_receipt} of {ballots.number} ballots carry a receipt: "
                "either all do or none does"
            )


def _paper_voters(tally: Tally) -> int:
    return tally if isinstance(tally, int) else sum(tally)


def _added(counted: Tally, paper: Tally | None) -> Tally:
    if paper is None:
        return counted
    if isinstance(counted, tuple) and isinstance(paper, tuple):
        return tuple(a + b for a, b in zip(counted, paper, strict=True))
    return cast(int, counted) + cast(int, paper)  # approvals: one number each


def _count_of(
    vote: _Vote, ballots: int, electronic: dict[str, Tally], paper: dict[str, Tally]
) -> Count:
    tallies = {
        option_id: _added(counted, paper.get(option_id))
        for option_id, counted in electronic.items()
    }
    lower_bound = ballots + max((_paper_voters(tally) for tally in paper.values()), default=0)
    return Count(
        format=FORMAT,
        title=vote.title,
        method=vote.method,
        options=vote.options,
        grades=vote.grades,
        participants=max(vote.participants or 0, lower_bound),
        declared_participants=vote.participants,
        ballots=ballots,
        tallies=tallies,
        quorum=vote.quorum,
        threshold=vote.threshold,
        adopt_grade=vote.adopt_grade,
        adopt_top=vote.adopt_top,
        adopt_majority=vote.adopt_majority,
        withdrawn=frozenset(vote.withdrawn),
    )


def count(source: BinaryIO | str | os.PathLike[str]) -> Count:
    """Checks and adds up a ballot box, from a binary file or a path, streaming its ballots.

    Raises BallotBoxError for anything that is not a valid voix-ballots/1 box (invalid UTF-8
    included); OSError when a path cannot be read.
    """
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as raw:
            return _BoxReader(raw).read()
    return _BoxReader(source).read()


# Writing: canonical bytes, streamed.


def _dumps(value: Any) -> str:
    # UTF-8 as is, ", " and ": " between items, no NaN: the same value, the same text.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class _HashingWriter:
    """Writes text as UTF-8 and hashes it, in batches: one call per ballot would cost more."""

    def __init__(self, out: BinaryIO, batch: int = 1000) -> None:
        self._out = out
        self._sha256 = hashlib.sha256()
        self._parts: list[str] = []
        self._batch = batch

    def write(self, text: str) -> None:
        self._parts.append(text)
        if len(self._parts) >= self._batch:
            self.flush()

    def flush(self) -> None:
        data = "".join(self._parts).encode("utf-8")
        self._parts = []
        self._out.write(data)
        self._sha256.update(data)

    def hexdigest(self) -> str:
        self.flush()
        return self._sha256.hexdigest()


def _canonical_choices(choices: Any, vote: _Vote, where: str) -> Any:
    """The ballot's choices checked, in the vote's option order."""
    if vote.method == APPROVAL:
        if not isinstance(choices, list):
            raise BallotBoxError(f"{where}: approval choices must be a list of option ids")
        for option_id in choices:
            if not isinstance(option_id, str) or option_id not in vote.ids:
                raise BallotBoxError(f"{where}: option {option_id!r} is not declared")
        if len(set(choices)) != len(choices):
            raise BallotBoxError(f"{where}: an option is approved twice")
        return [option_id for option_id in vote.order if option_id in choices]
    if not isinstance(choices, dict):
        raise BallotBoxError(f"{where}: choices must be an object of option ids")
    for option_id, value in choices.items():
        wrong = _check_choice(vote, option_id, value)
        if wrong:
            raise BallotBoxError(f"{where}: {wrong}")
    return {option_id: choices[option_id] for option_id in vote.order if option_id in choices}


def _canonical_ballot(ballot: Any, vote: _Vote, number: int) -> dict[str, Any]:
    where = f"ballot {number}"
    if not isinstance(ballot, dict) or "choices" not in ballot or set(ballot) - _BALLOT_KEYS:
        raise BallotBoxError(f"{where} is not an object with choices (and maybe a receipt)")
    canonical: dict[str, Any] = {}
    if "receipt" in ballot:
        if not isinstance(ballot["receipt"], str):
            raise BallotBoxError(f"{where}: the receipt is not a string")
        canonical["receipt"] = ballot["receipt"]
    canonical["choices"] = _canonical_choices(ballot["choices"], vote, where)
    return canonical


def _write_ballots(sink: _HashingWriter, ballots: Iterable[Any], vote: _Vote) -> int:
    """Writes the ballots array, one ballot a line; returns how many carry a receipt."""
    sink.write('  "ballots": [')
    number = with_receipt = 0
    for ballot in ballots:
        number += 1
        canonical = _canonical_ballot(ballot, vote, number)
        with_receipt += "receipt" in canonical
        if with_receipt not in (0, number):  # the first ballot sets the rule for all
            raise BallotBoxError(f"ballot {number}: either every ballot has a receipt or none")
        sink.write(("\n    " if number == 1 else ",\n    ") + _dumps(canonical))
    sink.write("\n  ]" if number else "]")
    return with_receipt


def _write_receipts(sink: _HashingWriter, receipts: Iterable[str]) -> None:
    given = list(receipts)
    if not all(isinstance(receipt, str) for receipt in given):
        raise BallotBoxError("a receipt is not a string")
    sink.write(',\n  "receipts": [')
    # Sorted: the order the receipts come in must not change the bytes.
    for number, receipt in enumerate(sorted(given)):
        sink.write(("\n    " if number == 0 else ",\n    ") + _dumps(receipt))
    sink.write("\n  ]" if given else "]")


def write(
    out: BinaryIO,
    vote: Mapping[str, Any],
    ballots: Iterable[Mapping[str, Any]],
    receipts: Iterable[str] | None = None,
    tallies: Mapping[str, Any] | None = None,
) -> str:
    """Streams the canonical voix-ballots/1 bytes of this box to `out`; returns their SHA-256.

    Canonical: UTF-8 (no ASCII escapes), keys in the format's order (format, vote, ballots,
    receipts if given, tallies if given), one ballot per line with its choices in the vote's
    option order, no trailing spaces, a final newline. Ballots are written as they come
    (a generator is never held whole); receipts are sorted, so they are held.

    Everything is checked as `count` would; a BallotBoxError raised midway leaves `out`
    with an incomplete box.
    """
    checked = _read_vote(dict(vote))
    paper = None if tallies is None else _read_tallies(dict(tallies), checked)
    sink = _HashingWriter(out)
    sink.write(f'{{\n  "format": {_dumps(FORMAT)},\n  "vote": {_dumps(checked.as_dict())},\n')
    with_receipt = _write_ballots(sink, ballots, checked)
    if receipts is not None:
        if with_receipt:
            raise BallotBoxError("ballots carry receipts: receipts cannot be listed apart too")
        _write_receipts(sink, receipts)
    if paper is not None:
        sink.write(f',\n  "tallies": {_dumps(paper)}')
    sink.write("\n}\n")
    return sink.hexdigest()
