"""What the help and legal pages are: their names, titles and the facts they state.

The words themselves are in the templates (help/templates/help/), one gettext message per
paragraph, so the catalogs translate them like every other page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from voix.i18n import N_


@dataclass(frozen=True)
class Page:
    slug: str
    title: str  # a msgid
    summary: str  # a msgid


TOPICS: dict[str, Page] = {
    page.slug: page
    for page in (
        Page(
            "tables",
            N_("How a neighbourhood table works"),
            N_("Who takes part, who runs it, and what becomes of what it decides."),
        ),
        Page(
            "proposing",
            N_("How to make a proposal"),
            N_("Write it, record it, or have it written for you; and what happens to it then."),
        ),
        Page(
            "votes",
            N_("How votes are counted"),
            N_(
                "For or against, majority judgment, approval, the quorum, paper and tablet in "
                "the room, the public ballot box and receipts."
            ),
        ),
        Page(
            "data",
            N_("What happens to your data"),
            N_("What we keep, who sees it, and how to download or erase it."),
        ),
    )
}

NOTICE, PRIVACY, ACCESSIBILITY = "notice", "privacy", "accessibility"
LEGAL_KINDS: dict[str, Page] = {
    page.slug: page
    for page in (
        Page(
            NOTICE,
            N_("Legal notice"),
            N_("Who publishes this site, and who hosts it."),
        ),
        Page(
            PRIVACY,
            N_("Privacy policy"),
            N_("Which personal data the site keeps, why, for how long, and your rights."),
        ),
        Page(
            ACCESSIBILITY,
            N_("Accessibility statement"),
            N_("How accessible the site is, what is not yet, and whom to tell."),
        ),
    )
}


@dataclass(frozen=True)
class AccessibilityCheck:
    """What the accessibility statement says was checked, and found (its text is in
    help/templates/help/legal/accessibility.html: change both when the site is checked again)."""

    checked_on: date
    rgaa_version: str
    axe_version: str
    pages: int  # distinct pages given to axe-core
    views: int  # pages x languages (fr, ar) x screens (390 and 1280 px)
    clean: int  # views where axe-core found no violation (WCAG 2.2 A/AA and best practice)


ACCESSIBILITY_CHECK = AccessibilityCheck(
    checked_on=date(2026, 11, 30),
    rgaa_version="4.1.2",
    axe_version="4.14.1",
    pages=27,
    views=108,
    clean=94,
)
