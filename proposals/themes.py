"""The themes a proposal can carry, each with a pictogram (an SVG symbol in
voix/static/themes.svg: emoji are missing on the older phones many residents use) and a
colour for maps."""

from __future__ import annotations

from dataclasses import dataclass

from voix.i18n import N_, gettext


@dataclass(frozen=True)
class Theme:
    slug: str
    msgid: str
    colour: str  # dark enough for white text and icons (WCAG AA)

    @property
    def label(self) -> str:
        return gettext(self.msgid)


THEMES = {
    theme.slug: theme
    for theme in (
        Theme("housing", N_("Housing"), "#8c1d40"),
        Theme("public_space", N_("Public space"), "#2f6b2f"),
        Theme("cleanliness", N_("Cleanliness"), "#1d5f73"),
        Theme("transport", N_("Transport"), "#1a4f9c"),
        Theme("school", N_("School"), "#6b3fb4"),
        Theme("health", N_("Health"), "#b3261e"),
        Theme("safety", N_("Safety"), "#3d4453"),
        Theme("shops", N_("Shops"), "#8a4b08"),
        Theme("culture_sport", N_("Culture & sport"), "#0f6e5a"),
        Theme("youth", N_("Youth"), "#a3367a"),
        Theme("other", N_("Other"), "#5b6270"),
    )
}
