"""The static map of a table's page, drawn in a worker process (voix.workers): projecting the
districts and the latest proposals (maps.svg.layout), fanning out the dots that cover one
another and rendering ~85 KB of SVG and list take some 15 ms of CPU at 10,000 proposals, which
the event loop must not spend (every request of the worker would wait for it)."""

from __future__ import annotations

from typing import Any

from maps import svg
from voix import i18n


def render(
    districts: list[dict[str, Any]],
    points: list[dict[str, Any]],
    *,
    map_id: str,
    title: str,
    lang: str,
) -> tuple[str, bool] | None:
    """The map's HTML (maps/static_map.html) in `lang`, and whether a district's boundary is
    only approximate; None when there is nothing to draw."""
    from voix.web import environment  # noqa: PLC0415 — the worker has it loaded (exports.pdf)

    drawn = svg.layout(districts, points)
    if drawn is None:
        return None
    token = i18n.current_language.set(lang)
    try:
        html = (
            environment()
            .get_template("maps/static_map.html")
            .render(map=drawn, map_id=map_id, title=title, lang=i18n.language(lang))
        )
    finally:
        i18n.current_language.reset(token)
    return html, any(d["approximate"] for d in drawn["districts"])
