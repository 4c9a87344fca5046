"""Every theme has its pictogram in the sprite and the same colour on pages and maps."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from proposals.themes import THEMES
from voix.settings import PROJECT_ROOT
from voix.static import static_url

from .factories import t

STATIC = PROJECT_ROOT / "voix" / "static"


def test_every_theme_has_a_pictogram_and_its_colour_in_the_stylesheet() -> None:
    sprite = ElementTree.parse(STATIC / "themes.svg").getroot()  # noqa: S314 — our own file
    symbols = {s.get("id") for s in sprite.iter("{http://www.w3.org/2000/svg}symbol")}
    assert symbols == {f"theme-{slug}" for slug in THEMES}
    css = (STATIC / "themes.css").read_text()
    for slug, theme in THEMES.items():
        assert re.search(rf"\.theme-{slug} \{{ color: {theme.colour}; \}}", css), slug


async def test_the_form_shows_each_theme_with_its_pictogram_and_label(client) -> None:
    from .factories import build_world, sign_in

    world = await build_world()
    await sign_in(client, world.users["resident_a"])
    form = await client.get("/tables/flamants-iris/proposals/new?lang=ar")
    for slug, theme in THEMES.items():
        assert f'href="{static_url("themes.svg")}#theme-{slug}"' in form.text
        assert t(theme.msgid, "ar") in form.text
    sprite = await client.get("/static/themes.svg")
    assert sprite.status_code == 200
    assert sprite.headers["content-type"].startswith("image/svg+xml")
