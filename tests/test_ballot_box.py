"""The public ballot box (voix-ballots/1): write, count, recount from the command line.

No database: these are files in memory or in tmp_path. Boxes that are not canonical are made
with json.dumps, the way another program would write them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voix.cli import main
from votes import ballot_box
from votes.ballot_box import BallotBoxError, count, write
from votes.scales import FIVE, SCALES, SEVEN

GRADES = list(SCALES[SEVEN])  # Excellent … À rejeter
LOWEST = len(GRADES) - 1


def mj_vote(**changes: Any) -> dict[str, Any]:
    vote = {
        "title": "Budget participatif 2026",
        "method": "majority_judgment",
        "options": [
            {"id": "p12", "label": "Jardins partagés"},
            {"id": "p14", "label": "Bancs place Jean-Jaurès"},
            {"id": "p15", "label": "Fontaine"},
        ],
        "grades": GRADES,
        "participants": 0,
    }
    vote.update(changes)
    return vote


def yes_no_vote(**changes: Any) -> dict[str, Any]:
    vote = {
        "title": "Piétonniser la rue",
        "method": "yes_no_abstain",
        "options": [{"id": "p3", "label": "Rue piétonne"}],
    }
    vote.update(changes)
    return vote


def approval_vote(**changes: Any) -> dict[str, Any]:
    vote = {
        "title": "Projets retenus",
        "method": "approval",
        "options": [
            {"id": "a", "label": "A"},
            {"id": "b", "label": "B"},
            {"id": "c", "label": "C"},
        ],
    }
    vote.update(changes)
    return vote


def box(vote: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"format": "voix-ballots/1", "vote": vote or mj_vote()}
    document.update(top)
    return document


def counted(document: dict[str, Any] | bytes | str) -> ballot_box.Count:
    if isinstance(document, dict):
        document = json.dumps(document, ensure_ascii=False)
    if isinstance(document, str):
        document = document.encode("utf-8")
    return count(io.BytesIO(document))


def written(*args: Any, **kw: Any) -> tuple[bytes, str]:
    out = io.BytesIO()
    digest = write(out, *args, **kw)
    return out.getvalue(), digest


def refused(document: dict[str, Any] | bytes | str) -> str:
    with pytest.raises(BallotBoxError) as caught:
        counted(document)
    return str(caught.value)


# The format's own example, and what a recount makes of it.

EXAMPLE = """{
  "format": "voix-ballots/1",
  "vote": {
    "title": "Budget", "method": "majority_judgment",
    "options": [{"id": "p12", "label": "Jardins partagés"}],
    "grades": ["Excellent", "Très bien", "Bien", "Assez bien", "Passable", "Insuffisant",
               "À rejeter"],
    "participants": 21
  },
  "ballots": [{"receipt": "7F3K9Q2M", "choices": {"p12": "Bien"}}],
  "tallies": {"p12": [3, 5, 4, 2, 1, 0, 0]}
}
"""


def test_the_formats_example() -> None:
    result = counted(EXAMPLE)
    assert (result.format, result.method, result.ballots) == ("voix-ballots/1", MJ, 1)
    assert result.participants == 21
    # One electronic "Bien" on top of the paper count; the 5 participants missing from the
    # 16 counted are counted at the lowest grade.
    assert result.tallies == {"p12": (3, 5, 5, 2, 1, 0, 0)}
    printed = result.as_json()
    assert printed["ranking"] == [
        {
            "option": "p12",
            "label": "Jardins partagés",
            "rank": 1,
            "majority_grade": "Bien",
            "tally": [3, 5, 5, 2, 1, 0, 5],
        }
    ]
    assert (printed["participants"], printed["ballots"], printed["format"]) == (
        21,
        1,
        "voix-ballots/1",
    )


MJ = "majority_judgment"


def test_an_option_left_ungraded_counts_at_the_lowest_grade() -> None:
    result = counted(
        box(
            ballots=[
                {"choices": {"p12": "Excellent", "p14": "Bien"}},
                {"choices": {"p12": "Excellent"}},
                {"choices": {}},
            ]
        )
    )
    assert result.tallies["p12"] == (2, 0, 0, 0, 0, 0, 1)
    assert result.tallies["p14"] == (0, 0, 1, 0, 0, 0, 2)
    assert result.tallies["p15"] == (0, 0, 0, 0, 0, 0, 3)
    ranking = result.result().ranking
    assert [(placed.option, placed.majority_grade) for placed in ranking] == [
        ("p12", 0),
        ("p14", LOWEST),
        ("p15", LOWEST),
    ]


def test_participants_beyond_the_ballots_count_at_the_lowest_grade() -> None:
    ballots = [{"choices": {"p12": "Excellent", "p14": "Excellent", "p15": "Bien"}}] * 2
    result = counted(box(mj_vote(participants=5), ballots=ballots))
    assert (result.participants, result.declared_participants, result.ballots) == (5, 5, 2)
    by_option = {entry["option"]: entry for entry in result.as_json()["ranking"]}
    assert by_option["p12"]["tally"] == [2, 0, 0, 0, 0, 0, 3]
    # 2 Excellent and 3 missing out of 5: the lower median is the lowest grade.
    assert by_option["p12"]["majority_grade"] == "À rejeter"


def test_a_declared_number_below_the_ballots_gives_way_to_them() -> None:
    ballots = [{"choices": {"p12": "Bien"}}] * 3
    result = counted(box(mj_vote(participants=1), ballots=ballots, tallies={"p14": [1] * 7}))
    # 3 electronic ballots, and at least 7 paper voters (the largest paper count).
    assert (result.participants, result.declared_participants) == (10, 1)


def test_paper_tallies_are_added_on_top_of_the_ballots() -> None:
    document = box(
        ballots=[{"choices": {"p12": "Excellent", "p14": "Passable"}}],
        tallies={"p12": [1, 2, 0, 0, 0, 0, 0], "p15": [0, 0, 0, 0, 0, 0, 4]},
    )
    result = counted(document)
    assert result.tallies == {
        "p12": (2, 2, 0, 0, 0, 0, 0),
        "p14": (0, 0, 0, 0, 1, 0, 0),
        "p15": (0, 0, 0, 0, 0, 0, 5),
    }
    assert result.participants == 1 + 4
    padded = {entry["option"]: entry["tally"] for entry in result.as_json()["ranking"]}
    assert padded["p12"] == [2, 2, 0, 0, 0, 0, 1]
    assert padded["p14"] == [0, 0, 0, 0, 1, 0, 4]


def test_yes_no_counts_ballots_and_paper_and_applies_the_threshold() -> None:
    ballots = [{"choices": {"p3": c}} for c in ["yes", "yes", "no", "abstain", "yes"]]
    document = box(yes_no_vote(threshold="two_thirds"), ballots=ballots, tallies={"p3": [1, 1, 2]})
    result = counted(document)
    assert result.tallies == {"p3": (4, 2, 3)}
    (entry,) = result.as_json()["ranking"]
    assert entry == {
        "option": "p3",
        "label": "Rue piétonne",
        "rank": 1,
        "yes": 4,
        "no": 2,
        "abstain": 3,
        "quorum_met": True,
        "adopted": True,  # 4 of 6 for and against: exactly two thirds
    }


def test_yes_no_without_its_quorum_is_not_adopted() -> None:
    ballots = [{"choices": {"p3": "yes"}}, {"choices": {}}]
    result = counted(box(yes_no_vote(quorum=3), ballots=ballots))
    (entry,) = result.as_json()["ranking"]
    assert (entry["yes"], entry["quorum_met"], entry["adopted"]) == (1, False, False)
    assert "Quorum of 3: not met" in result.as_text()


def test_approval_ranks_and_adopts_the_top() -> None:
    ballots = [{"choices": c} for c in (["a", "b"], ["b"], ["c", "b"], [])]
    document = box(approval_vote(adopt_top=1), ballots=ballots, tallies={"a": 1})
    ranking = counted(document).as_json()["ranking"]
    assert [(e["option"], e["rank"], e["approvals"], e["adopted"]) for e in ranking] == [
        ("b", 1, 3, True),
        ("a", 2, 2, False),  # one electronic approval and one on paper
        ("c", 3, 1, False),
    ]


def test_majority_judgment_adopts_by_grade_and_says_so() -> None:
    ballots = [
        {"choices": {"p12": "Très bien", "p14": "Passable", "p15": "Bien"}},
        {"choices": {"p12": "Bien", "p14": "Passable", "p15": "Passable"}},
        {"choices": {"p12": "Excellent", "p14": "Bien", "p15": "Bien"}},
    ]
    result = counted(box(mj_vote(adopt_grade="Bien"), ballots=ballots))
    adopted = {e["option"]: e["adopted"] for e in result.as_json()["ranking"]}
    assert adopted == {"p12": True, "p15": True, "p14": False}


def test_without_a_rule_a_ranking_adopts_nothing_and_says_nothing() -> None:
    ranking = counted(box(ballots=[{"choices": {"p12": "Bien"}}])).as_json()["ranking"]
    assert all("adopted" not in entry for entry in ranking)


# Writing and reading back.


def mj_ballots(number: int, seed: int = 7, receipts: bool = False) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible ballots, not secrets
    for index in range(number):
        choices = {o: rng.choice(GRADES) for o in ("p15", "p12", "p14") if rng.random() > 0.1}
        ballot: dict[str, Any] = {"choices": choices}
        if receipts:
            ballot["receipt"] = f"R{index:07d}"
        yield ballot


def naive_tallies(ballots: list[dict[str, Any]], options: list[str]) -> dict[str, tuple[int, ...]]:
    """What a recount must find, counted the obvious way."""
    tallies = {}
    for option in options:
        counts = [0] * len(GRADES)
        for ballot in ballots:
            counts[GRADES.index(ballot["choices"].get(option, GRADES[-1]))] += 1
        tallies[option] = tuple(counts)
    return tallies


def test_round_trip_write_then_count() -> None:
    ballots = list(mj_ballots(500, receipts=True))
    paper = {"p14": [0, 1, 2, 3, 4, 5, 6]}
    data, digest = written(mj_vote(participants=530, adopt_top=1), ballots, None, paper)
    assert digest == hashlib.sha256(data).hexdigest()
    result = counted(data)
    expected = naive_tallies(ballots, ["p12", "p14", "p15"])
    expected["p14"] = tuple(a + b for a, b in zip(expected["p14"], paper["p14"], strict=True))
    assert result.tallies == expected
    assert (result.ballots, result.participants, result.adopt_top) == (500, 530, 1)
    assert [o.id for o in result.options] == ["p12", "p14", "p15"]


def test_round_trip_of_every_method_with_receipts_listed_apart() -> None:
    for vote, ballots, tallies in (
        (approval_vote(quorum=2), [{"choices": ["c", "a"]}, {"choices": []}], {"b": 4}),
        (yes_no_vote(threshold="three_fifths"), [{"choices": {"p3": "no"}}], {"p3": [3, 0, 1]}),
    ):
        receipts = ["Z9", "A1"][: len(ballots)]
        data, _ = written(vote, ballots, receipts, tallies)
        result = counted(data)
        assert (result.method, result.ballots) == (vote["method"], len(ballots))
        assert result.quorum == vote.get("quorum")
        assert result.threshold == vote.get("threshold")
    assert counted(written(approval_vote(), [{"choices": ["c", "a"]}])[0]).tallies == {
        "a": 1,
        "b": 0,
        "c": 1,
    }


def test_the_same_inputs_give_the_same_bytes() -> None:
    receipts = [f"R{index:03d}" for index in range(300)]
    shuffled = random.Random(1).sample(receipts, len(receipts))  # noqa: S311
    first = written(mj_vote(), mj_ballots(300), receipts, {"p12": [1] * 7})
    again = written(mj_vote(), mj_ballots(300), shuffled, {"p12": [1] * 7})
    assert first == again
    other = written(mj_vote(), mj_ballots(300, seed=8), receipts, {"p12": [1] * 7})
    assert other[1] != first[1]


WRITE_IN_A_PROCESS = """
import hashlib, io, sys
from votes.ballot_box import write
options = [{"id": f"option-{n}", "label": str(n)} for n in range(40)]
vote = {"title": "t", "method": "approval", "options": options}
ballots = [{"choices": [o["id"] for o in reversed(options)]}, {"choices": ["option-7", "option-3"]}]
out = io.BytesIO()
print(write(out, vote, ballots), hashlib.sha256(out.getvalue()).hexdigest())
"""


def test_the_same_bytes_in_every_process() -> None:
    """Nothing may depend on the order of a set, which changes with the hash seed."""
    digests = set()
    for seed in ("1", "2", "3"):
        run = subprocess.run(
            [sys.executable, "-c", WRITE_IN_A_PROCESS],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        digests.add(run.stdout)
    assert len(digests) == 1


def test_canonical_layout() -> None:
    ballots = [
        {"choices": {"p15": "Bien", "p14": "Passable", "p12": "À rejeter"}, "receipt": "K2"},
        {"receipt": "K1", "choices": {}},
    ]
    data, _ = written(mj_vote(quorum=3), ballots, None, {"p15": [0] * 7, "p12": [1] * 7})
    text = data.decode("utf-8")
    assert text == (
        "{\n"
        '  "format": "voix-ballots/1",\n'
        f'  "vote": {json.dumps(mj_vote(quorum=3), ensure_ascii=False)},\n'
        '  "ballots": [\n'
        '    {"receipt": "K2", "choices": '
        '{"p12": "À rejeter", "p14": "Passable", "p15": "Bien"}},\n'
        '    {"receipt": "K1", "choices": {}}\n'
        "  ],\n"
        '  "tallies": {"p12": [1, 1, 1, 1, 1, 1, 1], "p15": [0, 0, 0, 0, 0, 0, 0]}\n'
        "}\n"
    )
    assert not any(line.endswith(" ") for line in text.splitlines())
    empty, _ = written(mj_vote(), [], [])
    assert b'"ballots": [],\n  "receipts": []\n}\n' in empty


def test_write_streams_a_generator_of_ballots() -> None:
    out = io.BytesIO()
    written_when: list[int] = []

    def ballots() -> Iterator[dict[str, Any]]:
        for index, ballot in enumerate(mj_ballots(100_000)):
            if index % 10_000 == 0:
                written_when.append(out.tell())
            yield ballot

    write(out, mj_vote(), ballots())
    # Bytes left for the output while the generator was still running: nothing was held.
    assert written_when[-1] > 0.8 * out.tell()
    assert written_when == sorted(written_when)
    assert counted(out.getvalue()).ballots == 100_000


def test_count_holds_no_ballots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory while counting stays that of a chunk or two, however many ballots there are."""
    monkeypatch.setattr(ballot_box, "CHUNK", 1 << 16)
    data, _ = written(mj_vote(), mj_ballots(40_000))
    source = io.BytesIO(data)
    tracemalloc.start()
    try:
        assert count(source).ballots == 40_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The file is over 2.5 MB; the objects json.load would make of it, ten times that.
    assert len(data) > 2_500_000
    assert peak < 1_000_000


def test_write_refuses_what_count_would() -> None:
    cases = [
        (mj_vote(method="condorcet"), [], "method 'condorcet' is not supported"),
        (mj_vote(), [{"choices": {"p9": "Bien"}}], "ballot 1: option 'p9' is not declared"),
        (mj_vote(), [{"choices": {"p12": "Bon"}}], "grade 'Bon' is not in the vote's grades"),
        (mj_vote(), [{"choices": {}}, {"choices": {}, "receipt": "X"}], "ballot 2: either"),
        (approval_vote(), [{"choices": {"a": "yes"}}], "must be a list of option ids"),
        (mj_vote(), [{"choices": {}, "who": "Mme X"}], "ballot 1 is not an object"),
    ]
    for vote, ballots, message in cases:
        with pytest.raises(BallotBoxError, match=message):
            written(vote, ballots)
    with pytest.raises(BallotBoxError, match="listed apart too"):
        written(mj_vote(), [{"choices": {}, "receipt": "X"}], ["X"])
    with pytest.raises(BallotBoxError, match="negative count"):
        written(mj_vote(), [], None, {"p12": [-1, 0, 0, 0, 0, 0, 0]})


# Reading files written by others.


def test_keys_in_another_order_and_other_whitespace_count_the_same() -> None:
    ballots = list(mj_ballots(200, receipts=True))
    document = box(mj_vote(participants=210), ballots=ballots, tallies={"p15": [1] * 7})
    expected = counted(written(document["vote"], ballots, None, document["tallies"])[0])
    reordered = {key: document[key] for key in ("tallies", "ballots", "vote", "format")}
    for text in (
        json.dumps(reordered),  # ASCII escapes, ballots before the vote
        json.dumps(reordered, indent="\t", separators=(",", ":")),
        json.dumps(document, indent=3, ensure_ascii=False).replace("\n", "\r\n"),
        "\ufeff" + json.dumps(document),  # a byte order mark, which RFC 8259 lets us ignore
    ):
        assert counted(text) == expected


def test_chunk_boundaries_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value, a number, a multi-byte character cut by a chunk: read the same."""
    ballots = list(mj_ballots(40))
    document = box(mj_vote(participants=12345), ballots=ballots, tallies={"p14": [7] * 7})
    text = json.dumps(document, ensure_ascii=False)
    expected = counted(text)
    for size in (1, 2, 3, 5, 64):
        monkeypatch.setattr(ballot_box, "CHUNK", size)
        assert counted(text) == expected
        assert "(line 1, column 2): expecting a key" in refused(text[:1] + "x" + text[1:])


def test_a_recount_of_random_boxes_matches_a_naive_count() -> None:
    rng = random.Random(2026)  # noqa: S311 - reproducible boxes, not secrets
    for _ in range(20):
        ballots = list(mj_ballots(rng.randrange(0, 60), seed=rng.randrange(10**6)))
        paper = {
            o: [rng.randrange(4) for _ in GRADES] for o in ("p12", "p15") if rng.random() < 0.5
        }
        declared = rng.randrange(0, 150)
        result = counted(box(mj_vote(participants=declared), ballots=ballots, tallies=paper))
        expected = naive_tallies(ballots, ["p12", "p14", "p15"])
        for option, counts in paper.items():
            expected[option] = tuple(a + b for a, b in zip(expected[option], counts, strict=True))
        assert result.tallies == expected
        paper_voters = max((sum(counts) for counts in paper.values()), default=0)
        assert result.participants == max(declared, len(ballots) + paper_voters)


def test_a_five_grade_scale() -> None:
    five = list(SCALES[FIVE])
    result = counted(box(mj_vote(grades=five), ballots=[{"choices": {"p12": "Passable"}}]))
    assert result.tallies["p12"] == (0, 0, 1, 0, 0)
    assert result.as_json()["ranking"][0]["majority_grade"] == "Passable"


def test_reads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "box.json"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert count(path).participants == count(str(path)).participants == 21


# Every problem is named, with where it is.

REFUSED = [
    ("", "not JSON: the file is empty"),
    ('{"format": "voix-ballots/1",\n "vote": {\n   x', "not JSON (line 3, column 4)"),
    ("[1, 2]", "not JSON (line 1, column 1): expecting a JSON object"),
    (box(format="voix-ballots/2"), "format 'voix-ballots/2' is not supported (expected voix-b"),
    ({"vote": mj_vote()}, "the format is missing"),
    ({"format": "voix-ballots/1"}, "the vote is missing"),
    (box(mj_vote(method="condorcet")), "method 'condorcet' is not supported"),
    (box(mj_vote(options=[{"id": "p1", "label": "A"}] * 2)), "option 'p1' is declared twice"),
    (box(mj_vote(options=[])), "options are missing"),
    (box(mj_vote(options=[{"id": 12, "label": "A"}])), "option 1: id and label must be strings"),
    (box(mj_vote(grades=["Bien"])), "grades are missing"),
    (box(mj_vote(grades=["Bien", "Bien"])), "a grade is listed twice"),
    (box(mj_vote(participants=-1)), "participants must be a whole number from 0 to"),
    (box(mj_vote(participants=10**13)), "participants must be a whole number from 0 to"),
    (box(mj_vote(adopt_top=3)), "adopt_top 3 would adopt every one of the 3 options"),
    (json.dumps(box(mj_vote(title="\ud800"))), "title holds an unpaired surrogate"),
    (box(mj_vote(participants=True)), "participants must be a whole number"),
    (box(mj_vote(adopt_grade="Top")), "adopt_grade 'Top' is not in the vote's grades"),
    (box(mj_vote(threshold="majority")), "threshold applies to yes_no_abstain votes only"),
    (box(mj_vote(adopt_top=0)), "adopt_top must be a whole number of at least 1"),
    (box(mj_vote(secret=1)), "unknown key 'secret' in the vote"),
    (box(approval_vote(grades=GRADES)), "grades are given, but approval votes have none"),
    (box(yes_no_vote(threshold="most")), "threshold 'most' is not one of majority"),
    (box(yes_no_vote(options=mj_vote()["options"])), "yes_no_abstain vote has exactly one"),
    (
        box(ballots=[{"choices": {}}, {"choices": {"p12": "Bon"}}]),
        "ballot 2: grade 'Bon' is not in the vote's grades",
    ),
    (box(ballots=[{"choices": {"p9": "Bien"}}]), "ballot 1: option 'p9' is not declared"),
    (box(ballots=[{"choices": {"p12": ["Bien"]}}]), "ballot 1: a choice is not a string"),
    (box(ballots=[{"choices": {"p12": 3}}]), "ballot 1: grade 3 is not in the vote's grades"),
    (box(ballots=[{"choices": ["p12"]}]), "ballot 1: choices must be an object of option ids"),
    (box(ballots=["p12"]), "ballot 1 is not an object with choices"),
    (box(ballots=[{"choice": {}}]), "ballot 1 is not an object with choices"),
    (box(ballots=[{"choices": {}, "voter": "x"}]), "ballot 1: unknown key 'voter'"),
    (box(ballots=[{"choices": "p12"}]), "ballot 1: choices are neither an object nor a list"),
    (box(ballots=[{"choices": {}, "receipt": 7}]), "ballot 1: the receipt is not a string"),
    (box(ballots={"p12": "Bien"}), "ballots are not a JSON list"),
    (box(approval_vote(), ballots=[{"choices": {"a": "yes"}}]), "ballot 1: approval choices must"),
    (box(approval_vote(), ballots=[{"choices": ["a", "a"]}]), "option 'a' is approved twice"),
    (box(approval_vote(), ballots=[{"choices": ["z"]}]), "ballot 1: option 'z' is not declared"),
    (box(approval_vote(), ballots=[{"choices": [["a"]]}]), "an approved option is not a string"),
    (
        box(yes_no_vote(), ballots=[{"choices": {"p3": "maybe"}}]),
        "ballot 1: choice 'maybe' for 'p3' is not yes, no or abstain",
    ),
    (box(tallies={"p9": [0] * 7}), "tallies: option 'p9' is not declared"),
    (box(tallies={"p12": [1, -1, 0, 0, 0, 0, 0]}), "tally for 'p12' has a negative count"),
    (box(tallies={"p12": [1, 2, 3, 4, 5]}), "tally for 'p12' has 5 counts, the vote has 7 grades"),
    (box(tallies={"p12": [1.5, 0, 0, 0, 0, 0, 0]}), "tally for 'p12' has a count that is not a"),
    (box(tallies=[1, 2]), "tallies are not a JSON object"),
    (box(approval_vote(), tallies={"a": [1]}), "tally for 'a' is not a whole number of approvals"),
    (box(approval_vote(), tallies={"a": -2}), "tally for 'a' has a negative count"),
    (box(yes_no_vote(), tallies={"p3": [1, 2]}), "tally for 'p3' has 2 counts, the vote has 3"),
    (
        box(ballots=[{"choices": {}, "receipt": "A"}, {"choices": {}}]),
        "1 of 2 ballots carry a receipt: either all do or none does",
    ),
    (
        box(ballots=[{"choices": {}, "receipt": "A"}], receipts=["A"]),
        "ballots carry receipts, and receipts are listed apart too",
    ),
    (box(ballots=[{"choices": {}}] * 2, receipts=["B", "A"]), "receipts are not sorted"),
    (box(receipts=[1]), "receipt 1 is not a string"),
    (box(tally={"p12": [0] * 7}), "unknown key 'tally' at the top level"),
    ('{"format": "voix-ballots/1", "format": "voix-ballots/1"}', "key 'format' appears twice"),
    (
        json.dumps(box())[:-1] + ', "ballots": [{"choices": {"p12": "Bien", "p12": "Bon"}}]}',
        "key 'p12' appears twice in one object",
    ),
    ('{"format": "voix-ballots/1", "vote": NaN}', "NaN is not a JSON number"),
    (json.dumps(box()) + " {}", "extra data after the ballot box"),
    (json.dumps(box(receipts=["A"])).replace('["A"]', '["A",]'), "expecting a value"),
    (json.dumps(box()).encode() + b"\n\xff", "not UTF-8 (byte"),
    ('{"format": ' + "[" * 100_000, "not JSON (line 1, column 12): unreadable value"),
]


@pytest.mark.parametrize(("document", "message"), REFUSED)
def test_every_problem_is_refused_and_named(document: Any, message: str) -> None:
    assert message in refused(document)


def test_a_bad_ballot_is_named_even_when_the_vote_comes_after_it() -> None:
    ballots = [{"choices": {"p12": "Bien"}}] * 3 + [{"choices": {"p12": "Bon"}}]
    document = {"ballots": ballots, "vote": mj_vote(), "format": "voix-ballots/1"}
    assert refused(document) == "ballot 4: grade 'Bon' is not in the vote's grades"
    document["ballots"] = [{"choices": {"p12": "Bien"}}, {"choices": ["p12"]}]
    assert "ballot 2: choices must be an object" in refused(document)


def test_a_wrong_format_is_what_is_said_wherever_it_stands() -> None:
    document = {"ballots": [{"votes": 1}], "vote": {"x": 1}, "format": "voix-ballots/2"}
    assert "format 'voix-ballots/2' is not supported" in refused(document)


def test_errors_are_value_errors() -> None:
    assert issubclass(BallotBoxError, ValueError)


# The command line.


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "ballots.json"
    ballots = [
        {"choices": {"p12": "Très bien", "p14": "Passable", "p15": "Bien"}},
        {"choices": {"p12": "Bien", "p14": "Passable"}},
        {"choices": {"p12": "Excellent", "p14": "Bien", "p15": "Bien"}},
    ]
    with path.open("wb") as out:
        write(out, mj_vote(participants=4, adopt_grade="Bien"), ballots, ["R2", "R1", "R3"])
    return path


def test_recount_prints_a_readable_ranking(example: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["recount", str(example)]) == 0
    # Four participants, one of whom cast no electronic ballot: counted at the lowest grade.
    assert capsys.readouterr().out.splitlines() == [
        "Budget participatif 2026",
        "Majority judgment: 4 participants, 3 electronic ballots",
        "  1. Jardins partagés         Bien       [1 1 1 0 0 0 1]  adopted",
        "  2. Bancs place Jean-Jaurès  Passable   [0 0 1 0 2 0 1]  not adopted",
        "  3. Fontaine                 À rejeter  [0 0 2 0 0 0 2]  not adopted",
    ]


def test_recount_json(example: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["recount", str(example), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["format"] == "voix-ballots/1"
    assert (printed["method"], printed["participants"], printed["ballots"]) == (MJ, 4, 3)
    assert printed["ranking"][0] == {
        "option": "p12",
        "label": "Jardins partagés",
        "rank": 1,
        "majority_grade": "Bien",  # the worse of the two middle grades of four
        "tally": [1, 1, 1, 0, 0, 0, 1],
        "adopted": True,
    }
    assert [entry["rank"] for entry in printed["ranking"]] == [1, 2, 3]


BAD_FILES = [
    (b'{"format": "voix-ballots/1", "vote": ', "not JSON (line 1, column 38)"),
    (json.dumps(box(format="voix-ballots/2")).encode(), "format 'voix-ballots/2' is not supp"),
    (json.dumps(box(ballots=[{"choices": {"p12": "Bon"}}])).encode(), "grade 'Bon' is not in"),
    (json.dumps(box(ballots=[{"choices": {"p9": "Bien"}}])).encode(), "option 'p9' is not decl"),
    (json.dumps(box(tallies={"p12": [0, 0, -3, 0, 0, 0, 0]})).encode(), "has a negative count"),
    (b"\xc3\x28", "not UTF-8 (byte 0)"),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES)
def test_recount_refuses_a_bad_file_with_exit_2(
    data: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    assert main(["recount", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"voix recount: {path}: ")
    assert message in captured.err


def test_recount_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nowhere.json"
    assert main(["recount", str(missing), "--json"]) == 2
    assert capsys.readouterr().err == f"voix recount: {missing}: No such file or directory\n"
    assert main(["recount", str(tmp_path)]) == 2
    assert "Is a directory" in capsys.readouterr().err


def test_recount_in_a_process_of_its_own_says_what_is_wrong_without_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(box(ballots=[{"choices": {"p12": "Bon"}}])), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "voix.cli", "recount", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr == (
        f"voix recount: {path}: ballot 1: grade 'Bon' is not in the vote's grades\n"
    )
