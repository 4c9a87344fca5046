"""Vote methods and grade scales: the words a ballot is written in.

A grade is named in the public ballot box by its French label (the product's language and
the one DESIGN.md's format shows); pages show the reader's translation of that label. Scales
are listed best grade first, as the ballot box and the counting module read them.
"""

from __future__ import annotations

from voix.i18n import N_

YES_NO_ABSTAIN = "yes_no_abstain"
MAJORITY_JUDGMENT = "majority_judgment"
APPROVAL = "approval"
METHODS = (YES_NO_ABSTAIN, MAJORITY_JUDGMENT, APPROVAL)
METHOD_LABELS = {
    YES_NO_ABSTAIN: N_("For, against or abstain"),
    MAJORITY_JUDGMENT: N_("Majority judgment"),
    APPROVAL: N_("Approval"),
}

YES, NO, ABSTAIN = "yes", "no", "abstain"
YES_NO_CHOICES = (YES, NO, ABSTAIN)

SEVEN = "seven"
FIVE = "five"
SCALES: dict[str, tuple[str, ...]] = {
    SEVEN: ("Excellent", "Très bien", "Bien", "Assez bien", "Passable", "Insuffisant", "À rejeter"),
    FIVE: ("Très bien", "Bien", "Passable", "Insuffisant", "À rejeter"),
}
SCALE_LABELS = {
    SEVEN: N_("Seven grades, from Excellent to To reject"),
    FIVE: N_("Five grades, from Very good to To reject"),
}
# What a page shows for each grade, in the reader's language.
GRADE_LABELS = {
    "Excellent": N_("Excellent"),
    "Très bien": N_("Very good"),
    "Bien": N_("Good"),
    "Assez bien": N_("Fairly good"),
    "Passable": N_("Passable"),
    "Insuffisant": N_("Insufficient"),
    "À rejeter": N_("To reject"),
}
# One colour per grade, from green (best) to red (worst); the label always goes with it.
GRADE_COLOURS = {
    "Excellent": "#1a7f37",
    "Très bien": "#4c9a2a",
    "Bien": "#8ab23a",
    "Assez bien": "#d9c31f",
    "Passable": "#f0a020",
    "Insuffisant": "#e06b1f",
    "À rejeter": "#c0392b",
}

# Yes/no: adopted when yes > no, and yes reaches this share of yes + no, quorum met.
THRESHOLDS: dict[str, tuple[int, int]] = {
    "majority": (1, 2),
    "three_fifths": (3, 5),
    "two_thirds": (2, 3),
}
THRESHOLD_LABELS = {
    "majority": N_("More for than against"),
    "three_fifths": N_("At least three fifths “for”, abstentions not counted"),
    "two_thirds": N_("At least two thirds “for”, abstentions not counted"),
}
