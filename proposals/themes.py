"""The themes a proposal can carry. (Pictograms will be SVGs served by the app: emoji
are missing on the older phones many residents use.)"""

from __future__ import annotations

from dataclasses import dataclass

from voix.i18n import N_, gettext


@dataclass(frozen=True)
class Theme:
    slug: str
    msgid: str

    @property
    def label(self) -> str:
        return gettext(self.msgid)


THEMES = {
    theme.slug: theme
    for theme in (
        Theme("housing", N_("Housing")),
        Theme("public_space", N_("Public space")),
        Theme("cleanliness", N_("Cleanliness")),
        Theme("transport", N_("Transport")),
        Theme("school", N_("School")),
        Theme("health", N_("Health")),
        Theme("safety", N_("Safety")),
        Theme("shops", N_("Shops")),
        Theme("culture_sport", N_("Culture & sport")),
        Theme("youth", N_("Youth")),
        Theme("other", N_("Other")),
    )
}
