"""Counting votes: pure arithmetic on tallies, no database, no I/O.

Grades are indices into a scale listed best first (see votes.scales): 0 is the best grade,
len - 1 the worst. A tally counts the voters at each grade, in that order. Tallies may count
millions of voters, so nothing here expands a tally into one entry per voter: majority
judgment is computed on a handful of runs per option.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from itertools import accumulate, pairwise
from typing import TypeVar

from votes.scales import APPROVAL, MAJORITY_JUDGMENT, THRESHOLDS, YES_NO_ABSTAIN

Tally = Sequence[int]
# A majority value in runs: (end, item) means `item` repeats up to position `end` (exclusive).
Runs = list[tuple[int, tuple[int, ...]]]
_T = TypeVar("_T")


def _check_counts(counts: Sequence[int]) -> None:
    if any(count < 0 for count in counts):
        raise ValueError(f"counts cannot be negative: {tuple(counts)}")


def pad(tally: Tally, participants: int) -> tuple[int, ...]:
    """The tally with every participant who gave no grade counted at the lowest grade."""
    _check_counts(tally)
    if not tally:
        raise ValueError("a tally needs at least one grade")
    missing = max(participants - sum(tally), 0)
    return (*tally[:-1], tally[-1] + missing)


def _grade_at(ends: Sequence[int], position: int) -> int:
    # `ends` are the running totals of a tally: the voter at `position` in best-first order
    # has the first grade whose running total exceeds it.
    return bisect_right(ends, position)


def majority_grade(tally: Tally) -> int | None:
    """The lower median: with an even count, the worse of the two middle grades."""
    _check_counts(tally)
    ends = list(accumulate(tally))
    if not ends or ends[-1] == 0:
        return None
    return _grade_at(ends, ends[-1] // 2)


def _majority_value(tally: Tally) -> Runs:
    """Balinski–Laraki's majority value, as runs: the lower medians peeled one by one.

    Peeling takes the voter at index r // 2 of the r voters left (sorted best first), leaving
    r // 2 voters before it and (r - 1) // 2 after: the peeled voters form a window around
    the first median m = n // 2 that grows one side, then the other. After
    the median, with n odd the next voter is m + 1 (worse side first), then m - 1, m + 2, ...;
    with n even it is m - 1 (better side first), then m + 1, m - 2, ..., ending at index 0.
    So value i >= 1 is the pair (m ± i, m ∓ i), and a pair's grades only change where one of
    its two positions crosses a grade boundary: a few runs per option, whatever n.

    Why comparing these sequences is the design document's tie-break. Let an option's
    median be g, with p voters above g (adhesion), q below (contestation), c at g. While j
    of the c remain, with r voters left, the next voter peeled is worse than g when
    p + j <= r // 2, which needs q >= p; it is better than g when p > r // 2, which needs
    p > q. So the run of g's ends towards contestation when q >= p (an equal split counts as
    contestation), after n - 2q values; towards adhesion when p > q, after n - 2p + 1
    values. Between two options with the same median and the same n, the one whose larger
    outer group is bigger leaves g first: ahead if that group is adhesion (a better grade
    where the other still shows g), behind if contestation. Adhesion of size k against
    contestation of size k: n - 2k + 1 > n - 2k, so the contestation side leaves first and
    loses, as in Balinski–Laraki. When both gauges are equal the runs of g match, and what
    follows is the same comparison on the voters left: "repeated until they differ". A value
    lists every voter once, so two options have equal values exactly when their tallies do.
    """
    ends = list(accumulate(tally))
    n = ends[-1]
    if n == 0:
        return []
    m, pairs = n // 2, (n - 1) // 2
    first = 1 if n % 2 else -1  # which side of the median each pair visits first
    # Pair i uses positions m + i and m - i; they change grade at i = end - m and
    # i = m - end + 1 respectively, for each grade boundary `end`.
    cuts = {1, pairs + 1}
    cuts.update(i for end in ends for i in (end - m, m - end + 1) if 1 < i <= pairs)
    runs: Runs = [(1, (_grade_at(ends, m),))]
    for start, stop in pairwise(sorted(cuts)):
        pair = (_grade_at(ends, m + first * start), _grade_at(ends, m - first * start))
        runs.append((stop, pair))
    if n % 2 == 0:
        runs.append((pairs + 2, (_grade_at(ends, 0),)))
    return runs


def _compare_values(a: Runs, b: Runs) -> int:
    """-1 if a is better (lexicographically smaller grades), 1 if worse, 0 if equal.

    Both values come from tallies of the same size, so their items line up one to one.
    """
    i = j = 0
    while i < len(a) and j < len(b):
        (end_a, item_a), (end_b, item_b) = a[i], b[j]
        if item_a != item_b:
            return -1 if item_a < item_b else 1
        # Move past whichever run ends first; the other still covers the next position.
        i += end_a <= end_b
        j += end_b <= end_a
    return 0


@dataclass(frozen=True)
class Placed:
    option: str
    rank: int  # from 1; equal tallies share a rank (1, 1, 3)
    tally: tuple[int, ...]  # majority judgment: padded counts, best first; approval: (approvals,)
    majority_grade: int | None = None  # majority judgment only


def _ranks(items: Sequence[_T], compare: Callable[[_T, _T], int]) -> list[tuple[int, _T]]:
    """Competition ranking (1, 1, 3); sorted() is stable, so ties keep their input order."""
    ordered = sorted(items, key=cmp_to_key(compare))
    ranked: list[tuple[int, _T]] = []
    for index, item in enumerate(ordered):
        tied = index > 0 and compare(ordered[index - 1], item) == 0
        ranked.append((ranked[-1][0] if tied else index + 1, item))
    return ranked


def rank_majority_judgment(tallies: Mapping[str, Tally], participants: int = 0) -> list[Placed]:
    """Options best first, every tally padded to the same number of voters."""
    if len({len(tally) for tally in tallies.values()}) > 1:
        raise ValueError("all tallies must use the same scale")
    # The largest count stands in for `participants` when the caller does not know it:
    # comparing majority values only makes sense between equal numbers of voters.
    voters = max([participants, *(sum(tally) for tally in tallies.values())])
    padded = [(option, pad(tally, voters)) for option, tally in tallies.items()]
    values = {option: _majority_value(tally) for option, tally in padded}

    def compare(a: tuple[str, tuple[int, ...]], b: tuple[str, tuple[int, ...]]) -> int:
        return _compare_values(values[a[0]], values[b[0]])

    return [
        Placed(option, rank, tally, majority_grade(tally))
        for rank, (option, tally) in _ranks(padded, compare)
    ]


def rank_approval(approvals: Mapping[str, int]) -> list[Placed]:
    """Options with the most approvals first."""
    _check_counts(list(approvals.values()))

    def compare(a: tuple[str, int], b: tuple[str, int]) -> int:
        return (a[1] < b[1]) - (a[1] > b[1])

    return [
        Placed(option, rank, (count,))
        for rank, (option, count) in _ranks(list(approvals.items()), compare)
    ]


@dataclass(frozen=True)
class YesNo:
    yes: int
    no: int
    abstain: int
    participants: int
    quorum: int | None
    quorum_met: bool
    threshold: str
    adopted: bool


def yes_no(
    yes: int,
    no: int,
    abstain: int,
    *,
    participants: int = 0,
    quorum: int | None = None,
    threshold: str = "majority",
) -> YesNo:
    """Adopted when yes > no, yes reaches the threshold's share of yes + no, and the quorum
    (counted on everyone who took part, abstentions included) is met."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"unknown threshold: {threshold!r}")
    _check_counts((yes, no, abstain))
    participants = max(participants, yes + no + abstain)
    quorum_met = quorum is None or participants >= quorum
    num, den = THRESHOLDS[threshold]
    # Integer cross-multiplication: "exactly two thirds" must not hinge on float rounding.
    adopted = quorum_met and yes > no and yes * den >= num * (yes + no)
    return YesNo(yes, no, abstain, participants, quorum, quorum_met, threshold, adopted)


def adopted_options(
    ranking: Sequence[Placed],
    *,
    participants: int,
    quorum: int | None = None,
    min_grade: int | None = None,
    top: int | None = None,
    approval: bool = False,
) -> set[str]:
    """The options a count adopts.

    Majority judgment: a majority grade as good as `min_grade` and/or a rank within `top`
    (both must hold when both are given; nothing is adopted when neither is). Approval: a
    rank within `top`, or else approval by more than half of the participants. Ties at the
    `top` boundary are all adopted, since they share the rank.

    Nobody voting adopts nothing, whatever the rule: options nobody voted on all tie at rank 1,
    and "the first N" would otherwise adopt them all. For the same reason an option nobody
    approved is never adopted.
    """
    if participants <= 0 or (quorum is not None and participants < quorum):
        return set()
    if approval:
        if top is not None:
            return {p.option for p in ranking if p.rank <= top and p.tally[0] > 0}
        return {placed.option for placed in ranking if placed.tally[0] * 2 > participants}
    if min_grade is None and top is None:
        return set()
    return {
        placed.option
        for placed in ranking
        if (
            min_grade is None
            or (placed.majority_grade is not None and placed.majority_grade <= min_grade)
        )
        and (top is None or placed.rank <= top)
    }


@dataclass(frozen=True)
class Outcome:
    """What a count decides: the ranking, the options adopted, and for/against's verdict."""

    ranking: list[Placed]
    adopted: frozenset[str] | None  # None when no rule to adopt by was given
    yes_no: YesNo | None = None


def outcome(
    method: str,
    tallies: Mapping[str, Sequence[int] | int],
    participants: int,
    *,
    quorum: int | None = None,
    threshold: str | None = None,
    min_grade: int | None = None,
    top: int | None = None,
    majority: bool = False,
    withdrawn: frozenset[str] = frozenset(),
) -> Outcome:
    """The one rule, for the result stored at closing and for `voix recount` alike.

    `tallies`: majority judgment, counts best grade first; approval, approvals; for/against,
    (yes, no, abstain) of its one option. Options `withdrawn` (hidden by moderation while the
    vote was open) keep their place in the ranking but are never adopted, and "the first N"
    are counted without them.
    """
    if method == YES_NO_ABSTAIN:
        ((option, counts),) = tallies.items()
        yes, no, abstain = counts  # type: ignore[misc]
        verdict = yes_no(
            yes,
            no,
            abstain,
            participants=participants,
            quorum=quorum,
            threshold=threshold or "majority",
        )
        adopted = {option} if verdict.adopted and option not in withdrawn else set()
        return Outcome([Placed(option, 1, (yes, no, abstain))], frozenset(adopted), verdict)

    def rank(subset: Mapping[str, Sequence[int] | int]) -> list[Placed]:
        if method == MAJORITY_JUDGMENT:
            return rank_majority_judgment(subset, participants)  # type: ignore[arg-type]
        return rank_approval(subset)  # type: ignore[arg-type]

    ranking = rank(tallies)
    if min_grade is None and top is None and not majority:
        return Outcome(ranking, None)
    eligible = ranking
    if withdrawn:
        eligible = rank({k: v for k, v in tallies.items() if k not in withdrawn})
    adopted = adopted_options(
        eligible,
        participants=participants,
        quorum=quorum,
        min_grade=min_grade,
        top=top,
        approval=method == APPROVAL,
    )
    return Outcome(ranking, frozenset(adopted))
