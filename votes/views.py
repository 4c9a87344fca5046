"""What vote pages and documents show of a result, in the reader's language."""

from __future__ import annotations

from typing import Any

from babel.numbers import format_decimal
from markupsafe import Markup

from proposals.models import ADOPTED
from voix.i18n import RTL_LANGUAGES, current_language, gettext
from votes import charts
from votes.scales import GRADE_LABELS, MAJORITY_JUDGMENT, YES_NO_ABSTAIN

WIDE = 480  # user units: the documents' width, and wide screens'
NARROW = 340  # a phone's: 12-unit text shows at about 11 px in a 390 px page


def _percent(percent: float) -> str:
    share = format_decimal(percent, "0.0", locale=current_language.get())
    return gettext("%(percent)s %%", percent=share)


def _describe_merit(label: str, majority: str | None, parts: list[tuple[str, int, float]]) -> str:
    if majority is None:
        return gettext("%(proposal)s: no ballot.", proposal=label)
    shares = ", ".join(
        gettext("%(grade)s %(count)d (%(share)s)", grade=g, count=n, share=_percent(p))
        for g, n, p in parts
    )
    return gettext(
        "%(proposal)s: majority grade %(grade)s; %(shares)s.",
        proposal=label,
        grade=majority,
        shares=shares,
    )


def _describe_approval(label: str, approvals: int, participants: int, percent: float) -> str:
    return gettext(
        "%(proposal)s: approved by %(count)d of %(total)d voters (%(share)s).",
        proposal=label,
        count=approvals,
        total=participants,
        share=_percent(percent),
    )


def _describe_yes_no(parts: list[tuple[str, int, float]]) -> str:
    return "; ".join(
        gettext("%(choice)s: %(count)d (%(share)s)", choice=c, count=n, share=_percent(p))
        for c, n, p in parts
    )


def chart_for_screens(vote: dict[str, Any]) -> Markup:
    """Two drawings of the same chart, one shown by the stylesheet: a narrow one for phones,
    whose text stays readable once scaled to 390 px, and the document's for wider screens."""
    prefix = f"vote-{vote['id']}"
    narrow = chart(vote, f"{prefix}-narrow", width=NARROW)
    wide = chart(vote, prefix)
    return Markup('<div class="chart-narrow">{}</div><div class="chart-wide">{}</div>').format(
        narrow, wide
    )


def chart(vote: dict[str, Any], id_prefix: str | None = None, width: int = WIDE) -> Markup:
    """The result drawn as SVG by the server: merit profiles, approval bars, or for/against."""
    rtl = current_language.get() in RTL_LANGUAGES
    withdrawn = gettext("Proposal withdrawn by moderation")
    ranked = [
        {**option, "label": withdrawn} if option.get("withdrawn") else option
        for option in sorted(vote["options"], key=lambda option: option["rank"] or 0)
    ]
    prefix = id_prefix or f"vote-{vote['id']}"
    prefix = prefix if prefix[:1].isalpha() else f"v{prefix}"
    if vote["method"] == YES_NO_ABSTAIN:
        yes, no, abstain = vote["options"][0]["tally"] or (0, 0, 0)
        return charts.yes_no_bar(
            yes,
            no,
            abstain,
            (gettext("For"), gettext("Against"), gettext("Abstain")),
            rtl=rtl,
            title=gettext("For, against, abstain"),
            describe=_describe_yes_no,
            empty_label=gettext("No ballot"),
            id_prefix=prefix,
            width=width,
        )
    if vote["method"] == MAJORITY_JUDGMENT:
        return charts.merit_profile(
            ranked,
            [(grade, gettext(GRADE_LABELS[grade])) for grade in vote["grades"]],
            rtl=rtl,
            title=gettext("Merit profiles"),
            describe=_describe_merit,
            caption=lambda grade: gettext("Majority grade: %(grade)s", grade=grade),
            empty_label=gettext("No ballot"),
            id_prefix=prefix,
            width=width,
        )
    return charts.approval_bars(
        [{"label": o["label"], "approvals": o["tally"][0]} for o in ranked],
        vote["participants"] or 0,
        rtl=rtl,
        title=gettext("Approvals"),
        describe=_describe_approval,
        empty_label=gettext("No ballot"),
        id_prefix=prefix,
        width=width,
    )


def overridden(
    vote: dict[str, Any], decisions: dict[int, dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Options the table later decided otherwise than the result, with the decision."""
    found = []
    for option in vote["options"]:
        decision = decisions.get(option["proposal"])
        if (
            decision
            and not decision["follows_vote"]
            and option["adopted"] is not None
            and (decision["outcome"] == ADOPTED) != option["adopted"]
        ):
            found.append((option, decision))
    return found
