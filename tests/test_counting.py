"""Counting: hand-worked examples, a naive re-implementation to compare against, bad input.

Grades are indices, best first. On the five-grade scale: 0 Très bien, 1 Bien, 2 Passable,
3 Insuffisant, 4 À rejeter. "Peeling" a sorted list of grades means taking its lower median
(index len // 2, the worse middle grade) again and again; the list of what was taken is the
option's majority value, and the better value (smaller grades first difference) wins.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import pairwise

import pytest

from votes.counting import (
    Placed,
    adopted_options,
    majority_grade,
    pad,
    rank_approval,
    rank_majority_judgment,
    yes_no,
)
from votes.scales import FIVE, SCALES, SEVEN


def places(ranking: list[Placed]) -> list[tuple[str, int]]:
    return [(placed.option, placed.rank) for placed in ranking]


# --- Majority judgment, by hand -------------------------------------------------------------


def test_majority_grade_takes_the_lower_middle_grade() -> None:
    # (2, 0, 0, 2, 0) sorts as [0, 0, 3, 3]: the middle grades are 0 and 3, the lower is 3.
    assert majority_grade((2, 0, 0, 2, 0)) == 3
    assert SCALES[FIVE][3] == "Insuffisant"
    # [0, 1] -> 1; [0] -> 0; [0, 1, 2] -> 1.
    assert majority_grade((1, 1)) == 1
    assert majority_grade((1,)) == 0
    assert majority_grade((1, 1, 1)) == 1
    assert majority_grade((0, 0, 0, 0, 0)) is None
    assert majority_grade(()) is None


def test_an_even_count_ranks_by_the_lower_middle_grade() -> None:
    # A: [0, 0, 3, 3] -> Insuffisant (an upper median would say Très bien and put A first).
    # B: [2, 2, 2, 2] -> Passable, so B is ahead.
    ranking = rank_majority_judgment({"A": (2, 0, 0, 2, 0), "B": (0, 0, 4, 0, 0)})
    assert places(ranking) == [("B", 1), ("A", 2)]
    assert [placed.majority_grade for placed in ranking] == [2, 3]


def test_same_median_adhesion_beats_contestation() -> None:
    # A: [0, 0, 1, 1, 2] -> median Bien, 2 above, 1 below: "Bien+".
    #    Peeling (indices 2, 3, 1, 4, 0): 1, 1, 0, 2, 0.
    # B: [0, 1, 1, 3, 3] -> median Bien, 1 above, 2 below: "Bien-".
    #    Peeling: 1, 3, 1, 3, 0. Second value 1 < 3: A is ahead.
    ranking = rank_majority_judgment({"B": (1, 2, 0, 2, 0), "A": (2, 2, 1, 0, 0)})
    assert places(ranking) == [("A", 1), ("B", 2)]
    assert [placed.majority_grade for placed in ranking] == [1, 1]


def test_an_equal_split_counts_as_contestation() -> None:
    # Four voters each, median Passable (index 2 of the sorted list).
    # G: [0, 2, 2, 2] -> 1 above, 0 below.  Peeling (indices 2, 1, 3, 0): 2, 2, 2, 0.
    # D: [2, 2, 2, 2] -> no outer group.    Peeling: 2, 2, 2, 2.
    # E: [0, 2, 2, 4] -> 1 above, 1 below.  Peeling: 2, 2, 4, 0.
    # E's equal split goes to contestation, so E is behind D (adhesion winning the split
    # would put E level with G on gauges and ahead of D).
    ranking = rank_majority_judgment(
        {"E": (1, 0, 2, 0, 1), "D": (0, 0, 4, 0, 0), "G": (1, 0, 3, 0, 0)}
    )
    assert places(ranking) == [("G", 1), ("D", 2), ("E", 3)]
    # The same with an odd count: C = [0, 2, 4] peels 2, 4, 0 and F = [2, 2, 2] peels 2, 2, 2.
    assert places(rank_majority_judgment({"C": (1, 0, 1, 0, 1), "F": (0, 0, 3, 0, 0)})) == [
        ("F", 1),
        ("C", 2),
    ]


def test_a_tie_broken_only_after_several_peels() -> None:
    # A: [1, 1, 2, 3, 3] and B: [0, 1, 2, 3, 4]: both Passable, 2 above and 2 below.
    # Peeling (indices 2, 3, 1, 4, 0): A gives 2, 3, 1, 3, 1; B gives 2, 3, 1, 4, 0.
    # Three values agree; the fourth, 3 < 4, puts the less polarised A ahead. (An upper
    # median would peel 2, 1, 3, 1 against 2, 1, 3, 0 and put B ahead.)
    ranking = rank_majority_judgment({"B": (1, 1, 1, 1, 1), "A": (0, 2, 1, 2, 0)})
    assert places(ranking) == [("A", 1), ("B", 2)]


def test_identical_tallies_share_a_rank_in_input_order() -> None:
    # X and Y: [0, 0, 0, 1] -> Très bien; Z: [1, 1, 1, 1] -> Bien.
    ranking = rank_majority_judgment(
        {"Y": (3, 1, 0, 0, 0), "Z": (0, 4, 0, 0, 0), "X": (3, 1, 0, 0, 0)}
    )
    assert places(ranking) == [("Y", 1), ("X", 1), ("Z", 3)]


def test_missing_participants_count_as_the_lowest_grade() -> None:
    tallies = {"A": (3, 0, 0, 0, 0), "B": (0, 2, 2, 0, 0)}
    # Without `participants`, both are padded to B's 4 voters:
    # A: [0, 0, 0, 4] -> Très bien; B: [1, 1, 2, 2] -> Passable.
    ranking = rank_majority_judgment(tallies)
    assert places(ranking) == [("A", 1), ("B", 2)]
    assert ranking[0].tally == (3, 0, 0, 0, 1)
    # With 7 participants: A: [0, 0, 0, 4, 4, 4, 4] -> À rejeter;
    # B: [1, 1, 2, 2, 4, 4, 4] -> Passable. Padding turns the result around.
    ranking = rank_majority_judgment(tallies, participants=7)
    assert places(ranking) == [("B", 1), ("A", 2)]
    assert [(placed.tally, placed.majority_grade) for placed in ranking] == [
        ((0, 2, 2, 0, 3), 2),
        ((3, 0, 0, 0, 4), 4),
    ]
    assert SCALES[FIVE][4] == "À rejeter"


def test_pad() -> None:
    assert pad((1, 2, 3), 10) == (1, 2, 7)
    assert pad([1, 2, 3], 6) == (1, 2, 3)
    assert pad((5, 5), 3) == (5, 5)  # more grades than participants: left alone


def test_seven_grade_scale() -> None:
    # C: [0, 0, 1, 1, 4, 5, 6] -> Très bien.
    # B: seven times 3 -> Assez bien, no outer group.
    # A: [0, 1, 2, 3, 4, 5, 6] -> Assez bien, split 3 / 3, so contestation: behind B.
    ranking = rank_majority_judgment(
        {"A": (1,) * 7, "B": (0, 0, 0, 7, 0, 0, 0), "C": (2, 2, 0, 0, 1, 1, 1)}
    )
    assert places(ranking) == [("C", 1), ("B", 2), ("A", 3)]
    assert [SCALES[SEVEN][placed.majority_grade or 0] for placed in ranking] == [
        "Très bien",
        "Assez bien",
        "Assez bien",
    ]


def test_nobody_graded() -> None:
    assert rank_majority_judgment({}) == []
    ranking = rank_majority_judgment({"a": (0, 0, 0), "b": (0, 0, 0)})
    assert [(p.option, p.rank, p.majority_grade) for p in ranking] == [
        ("a", 1, None),
        ("b", 1, None),
    ]
    # Three participants who graded nothing: everyone at the lowest grade.
    ranking = rank_majority_judgment({"a": (0, 0, 0), "b": (0, 0, 0)}, participants=3)
    assert [(p.rank, p.tally, p.majority_grade) for p in ranking] == [
        (1, (0, 0, 3), 2),
        (1, (0, 0, 3), 2),
    ]


# --- Approval and yes / no ------------------------------------------------------------------


def test_approval_ties_share_a_rank() -> None:
    ranking = rank_approval({"a": 5, "b": 7, "c": 5, "d": 2})
    assert places(ranking) == [("b", 1), ("a", 2), ("c", 2), ("d", 4)]
    assert ranking[0] == Placed("b", 1, (7,))


def test_yes_no_quorum_not_met() -> None:
    # 12 voted, 15 took part (3 with no ballot counted), quorum 20.
    result = yes_no(10, 2, 0, participants=15, quorum=20)
    assert (result.participants, result.quorum_met, result.adopted) == (15, False, False)
    # Abstentions count towards the quorum: 3 + 1 + 6 = 10 participants.
    result = yes_no(3, 1, 6, quorum=10)
    assert (result.participants, result.quorum_met, result.adopted) == (10, True, True)


def test_yes_no_tie_is_not_adopted() -> None:
    assert not yes_no(5, 5, 3).adopted
    assert not yes_no(0, 0, 4).adopted
    assert yes_no(6, 5, 0).adopted


def test_yes_no_thresholds() -> None:
    # Two thirds of 10 + 5 = 15 is 10: reached exactly; 9 of 14 falls short of 9.33.
    assert yes_no(10, 5, 0, threshold="two_thirds").adopted
    assert not yes_no(9, 5, 0, threshold="two_thirds").adopted
    assert yes_no(9, 5, 0).adopted  # a simple majority
    # Three fifths of 3 + 2 = 5 is 3: reached exactly; 5 of 9 falls short of 5.4.
    assert yes_no(3, 2, 0, threshold="three_fifths").adopted
    assert not yes_no(5, 4, 0, threshold="three_fifths").adopted
    result = yes_no(10, 5, 2, threshold="two_thirds")
    assert (result.threshold, result.quorum, result.quorum_met) == ("two_thirds", None, True)


# --- Adoption -------------------------------------------------------------------------------

# X, Y: [0, 0, 0, 1] -> 0; Z: [1, 1, 1, 1] -> 1; W: [2, 3, 3, 3] -> 3. Ranks 1, 1, 3, 4.
RANKING = rank_majority_judgment(
    {"X": (3, 1, 0, 0, 0), "Y": (3, 1, 0, 0, 0), "Z": (0, 4, 0, 0, 0), "W": (0, 0, 1, 3, 0)}
)


def test_ranking_for_adoption() -> None:
    assert places(RANKING) == [("X", 1), ("Y", 1), ("Z", 3), ("W", 4)]


@pytest.mark.parametrize(
    ("min_grade", "top", "adopted"),
    [
        (1, None, {"X", "Y", "Z"}),  # Bien or better
        (0, None, {"X", "Y"}),
        (4, None, {"X", "Y", "Z", "W"}),
        (None, 1, {"X", "Y"}),  # the tie at the boundary is adopted whole
        (None, 2, {"X", "Y"}),  # nobody is second
        (None, 3, {"X", "Y", "Z"}),
        (1, 2, {"X", "Y"}),  # both given: both must hold
        (4, 3, {"X", "Y", "Z"}),
        (0, 4, {"X", "Y"}),
        (None, None, set()),
    ],
)
def test_adopted_by_majority_judgment(
    min_grade: int | None, top: int | None, adopted: set[str]
) -> None:
    assert adopted_options(RANKING, participants=4, min_grade=min_grade, top=top) == adopted


def test_nothing_adopted_without_quorum() -> None:
    assert adopted_options(RANKING, participants=4, quorum=5, min_grade=4) == set()
    assert adopted_options(RANKING, participants=5, quorum=5, min_grade=0) == {"X", "Y"}
    approval = rank_approval({"a": 9})
    assert adopted_options(approval, participants=9, quorum=10, approval=True) == set()


def test_adopted_by_approval() -> None:
    ranking = rank_approval({"a": 5, "b": 7, "c": 5, "d": 2})
    # More than half of 10: 7 is, 5 is not.
    assert adopted_options(ranking, participants=10, approval=True) == {"b"}
    assert adopted_options(ranking, participants=9, approval=True) == {"a", "b", "c"}
    assert adopted_options(ranking, participants=10, approval=True, top=2) == {"a", "b", "c"}
    assert adopted_options(ranking, participants=10, approval=True, top=1) == {"b"}


# --- A naive implementation to compare against ----------------------------------------------


def naive_value(tally: Sequence[int], voters: int) -> list[int]:
    grades = sorted(grade for grade, count in enumerate(tally) for _ in range(count))
    grades += [len(tally) - 1] * (voters - len(grades))
    value = []
    while grades:
        value.append(grades.pop(len(grades) // 2))
    return value


def naive_ranking(tallies: Mapping[str, Sequence[int]], participants: int) -> list[Placed]:
    voters = max([participants, *(sum(tally) for tally in tallies.values())])
    values = {option: naive_value(tally, voters) for option, tally in tallies.items()}
    ordered = sorted(tallies, key=values.__getitem__)
    ranking: list[Placed] = []
    for index, option in enumerate(ordered):
        tied = index > 0 and values[ordered[index - 1]] == values[option]
        rank = ranking[-1].rank if tied else index + 1
        *better, lowest = tallies[option]
        tally = (*better, lowest + voters - sum(tallies[option]))
        value = values[option]
        ranking.append(Placed(option, rank, tally, value[0] if value else None))
    return ranking


def random_poll(rng: random.Random) -> tuple[dict[str, tuple[int, ...]], int]:
    grades = rng.choice((5, 7))
    # One weighting per poll makes options alike, so near ties are common.
    weights = [rng.random() ** 2 for _ in range(grades)]
    tallies: dict[str, tuple[int, ...]] = {}
    for index in range(rng.randint(2, 8)):
        if tallies and rng.random() < 0.15:
            tally = rng.choice(list(tallies.values()))
        else:
            chosen = rng.choices(range(grades), weights=weights, k=rng.randint(0, 60))
            tally = tuple(chosen.count(grade) for grade in range(grades))
        tallies[f"option{index}"] = tally
    most = max(sum(tally) for tally in tallies.values())
    participants = rng.choice((0, most, most + rng.randint(1, 15)))
    return tallies, participants


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_the_naive_count(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible polls, not secrets
    for _ in range(1000):
        tallies, participants = random_poll(rng)
        expected = naive_ranking(tallies, participants)
        assert rank_majority_judgment(tallies, participants) == expected, (tallies, participants)
        for option, tally in tallies.items():
            value = naive_value(tally, sum(tally))
            assert majority_grade(tally) == (value[0] if value else None), option


def test_a_million_voters() -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible polls, not secrets
    voters = 1_000_000
    tallies = {}
    for index in range(10):
        cuts = sorted(rng.randint(0, voters) for _ in range(4))
        tallies[f"option{index}"] = tuple(b - a for a, b in pairwise([0, *cuts, voters]))
    ranking = rank_majority_judgment(tallies)
    assert sorted(placed.option for placed in ranking) == sorted(tallies)
    grades = [placed.majority_grade or 0 for placed in ranking]
    assert grades == sorted(grades)  # a better median always ranks first
    # The values differ only in their very last element (index 0, the best voter):
    # A's best voter says Très bien, B's says Bien; a million equal values come first.
    ranking = rank_majority_judgment(
        {"B": (0, 500_000, 0, 0, 500_000), "A": (1, 499_999, 0, 0, 500_000)}
    )
    assert places(ranking) == [("A", 1), ("B", 2)]
    # The same shape with 10 voters, where the naive count can follow.
    small = {"B": (0, 5, 0, 0, 5), "A": (1, 4, 0, 0, 5)}
    assert rank_majority_judgment(small) == naive_ranking(small, 0)
    assert places(naive_ranking(small, 0)) == [("A", 1), ("B", 2)]


# --- Bad input ------------------------------------------------------------------------------


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        pad((1, -1, 0), 3)
    with pytest.raises(ValueError, match="negative"):
        majority_grade((3, -1))
    with pytest.raises(ValueError, match="negative"):
        rank_majority_judgment({"a": (1, -2, 0), "b": (1, 1, 1)})
    with pytest.raises(ValueError, match="negative"):
        rank_approval({"a": 3, "b": -1})
    with pytest.raises(ValueError, match="negative"):
        yes_no(1, -1, 0)


def test_tallies_on_different_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="same scale"):
        rank_majority_judgment({"a": (1, 2, 0, 0, 0), "b": (1, 2, 0, 0, 0, 0, 0)})
    with pytest.raises(ValueError, match="at least one grade"):
        pad((), 3)


def test_unknown_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown threshold"):
        yes_no(3, 1, 0, threshold="unanimity")


def test_a_vote_nobody_voted_in_adopts_nothing_whatever_the_rule() -> None:
    # Nobody voted: every option ties at rank 1, and "the first 1" would adopt them all.
    nobody = rank_majority_judgment({"a": [0] * 7, "b": [0] * 7}, participants=0)
    assert [p.rank for p in nobody] == [1, 1]
    assert adopted_options(nobody, participants=0, top=1) == set()
    assert adopted_options(nobody, participants=0, min_grade=6) == set()
    unapproved = rank_approval({"a": 0, "b": 0})
    assert adopted_options(unapproved, participants=0, approval=True, top=1) == set()
    # Three voters approved only "a": "b" and "c" tie second with nothing; "the first 2" is
    # "a" alone, not two options nobody wanted.
    some = rank_approval({"a": 3, "b": 0, "c": 0})
    assert adopted_options(some, participants=3, approval=True, top=2) == {"a"}
