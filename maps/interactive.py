"""Interactive maps with folium, served whole by the app: Leaflet and its plugins come from
/static, the tiles from the configured URL, nothing else from anywhere.

folium builds the map's shell only: tiles, districts, controls. The proposals are not in the
page: /static/map-points.js fetches them as JSON from the URL the page names (the same filters
in its query) and adds them to a marker cluster in chunks, building each popup with
`textContent` when it opens. So the page depends only on the districts, the title, the language
and the tiles, and is built once and cached (maps/controllers.py).

folium writes inline scripts and styles, and puts text given to it (tooltips, layer names) into
JavaScript template literals without escaping it. The few texts folium does place (district
names, the title, the attribution) are HTML-escaped with backticks and dollar signs turned
into entities (a name like "${…}" must not run). The page gets a Content-Security-Policy of its
own listing the hashes of exactly the inline scripts and styles it carries.

folium is imported when a page is first built (in a worker process), never when the app starts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markupsafe import escape

from maps.svg import rings

LEAFLET = "/static/leaflet-1.9.4"
CLUSTER = "/static/leaflet.markercluster-1.5.3"
MIN_ZOOM = 10  # the city
MAX_ZOOM = 18  # a building (the tiles' last level with detail)
SCRIPT = "/static/map-points.js"
_INLINE = re.compile(r"<(script|style)(?![^>]*\bsrc=)[^>]*>(.*?)</\1>", re.DOTALL)
# folium's page forbids zooming it (maximum-scale=1.0, user-scalable=no): whoever needs to
# enlarge the page must be able to (WCAG 1.4.4). A pinch on the map itself still zooms the map
# (Leaflet's touch zoom); the browser's zoom and text size enlarge the page, popups included.
_VIEWPORT = re.compile(r"<meta\s+name=\"viewport\"[^>]*>", re.IGNORECASE)
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


@dataclass(frozen=True)
class MapPage:
    html: str
    content_security_policy: str


def inert(text: str) -> str:
    """User text for folium: HTML-escaped, and unable to close or run a JS template literal."""
    return str(escape(text)).replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def _local_assets(map_: Any) -> None:
    map_.default_js = [
        ("leaflet", f"{LEAFLET}/leaflet.js"),
        ("markerclusterjs", f"{CLUSTER}/leaflet.markercluster.js"),
    ]
    map_.default_css = [
        ("leaflet_css", f"{LEAFLET}/leaflet.css"),
        ("markerclustercss", f"{CLUSTER}/MarkerCluster.css"),
        ("markerclusterdefaultcss", f"{CLUSTER}/MarkerCluster.Default.css"),
        ("voix_map_css", "/static/map.css"),
        ("voix_themes_css", "/static/themes.css"),
    ]


def _attribute(value: str) -> str:
    return str(escape(value))


def build(
    districts: list[dict[str, Any]],
    *,
    title: str,
    tiles_url: str,
    attribution: str,
    points_url: str,
    fallback_url: str,
    fallback_text: str,
    script_url: str = SCRIPT,
) -> MapPage:
    """The map's shell: district boundaries, the tiles, the controls, and the data its script
    reads (where the points are, the map's name, the districts' bounds) as attributes."""
    import folium  # noqa: PLC0415 - heavy: only in the worker that builds a page

    # Zoom 10 shows the whole of Marseille: no farther out. The marker cluster computes its
    # clusters for every zoom level the map allows, so nine levels instead of nineteen halve
    # the work of drawing 10,000 points.
    map_ = folium.Map(
        location=[43.34, 5.39],
        zoom_start=13,
        min_zoom=MIN_ZOOM,
        max_zoom=MAX_ZOOM,
        tiles=None,
        control_scale=True,
    )
    _local_assets(map_)
    root = map_.get_root()
    root.title = inert(title)  # type: ignore[attr-defined]
    folium.TileLayer(
        tiles=tiles_url, attr=inert(attribution), min_zoom=MIN_ZOOM, max_zoom=MAX_ZOOM
    ).add_to(map_)
    bounds: list[list[float]] = []
    for district in districts:
        folium.GeoJson(
            district["boundary"],
            name=inert(district["name"]),
            style_function=_dashed if district.get("approximate") else _solid,
            tooltip=folium.Tooltip(inert(district["name"])),
        ).add_to(map_)
        for ring in rings(district["boundary"]):
            bounds += [[lat, lon] for lon, lat in ring]
    box = (
        [
            [min(b[0] for b in bounds), min(b[1] for b in bounds)],
            [max(b[0] for b in bounds), max(b[1] for b in bounds)],
        ]
        if bounds
        else None
    )
    if box:
        map_.fit_bounds(box)
    # The points are asked for at once, beside Leaflet's files, not after them (the script
    # that reads them runs when the document is parsed: "defer").
    root.header.add_child(  # type: ignore[attr-defined]
        folium.Element(
            f'<link rel="preload" href="{_attribute(points_url)}" as="fetch" crossorigin>'
            f'<script src="{_attribute(script_url)}" defer></script>'
        )
    )
    root.html.add_child(  # type: ignore[attr-defined]
        folium.Element(
            f'<noscript><p class="map-fallback"><a href="{_attribute(fallback_url)}">'
            f"{_attribute(fallback_text)}</a></p></noscript>"
            f'<div id="voix-map" hidden data-map="{_attribute(map_.get_name())}"'
            f' data-points="{_attribute(points_url)}"'
            f' data-bounds="{_attribute(json.dumps(box) if box else "")}"></div>'
        )
    )
    html = _VIEWPORT.sub(VIEWPORT, root.render(), count=1)
    return MapPage(html, _policy(html, tiles_url))


def _solid(_feature: Any) -> dict[str, Any]:
    return {"color": "#8c1d40", "weight": 2, "fillOpacity": 0.05}


def _dashed(_feature: Any) -> dict[str, Any]:
    """Approximate boundaries (the demo's) are drawn dashed."""
    return {**_solid(_feature), "dashArray": "6 4"}


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def tiles_origin(tiles_url: str) -> str:
    """Where the tiles come from, as a CSP source."""
    parts = urlsplit(tiles_url.replace("{s}", "a"))
    if not parts.netloc:
        return ""
    if "{s}" in tiles_url:
        return f"{parts.scheme}://*.{parts.netloc.split('.', 1)[-1]}"
    return f"{parts.scheme}://{parts.netloc}"


def page_policy_with_tiles(base_policy: str, tiles_url: str) -> str:
    """The site's policy, letting this page show map tiles too."""
    return base_policy.replace(
        "img-src 'self' data:", f"img-src 'self' data: {tiles_origin(tiles_url)}"
    )


def _policy(html: str, tiles_url: str) -> str:
    """Only this document's own inline scripts and styles run; images from here and the tiles."""
    scripts = {_hash(body) for kind, body in _INLINE.findall(html) if kind == "script"}
    styles = {_hash(body) for kind, body in _INLINE.findall(html) if kind == "style"}
    return (
        "default-src 'self'; "
        f"script-src 'self' {' '.join(sorted(scripts))}; "
        f"style-src 'self' {' '.join(sorted(styles))}; "
        f"img-src 'self' data: {tiles_origin(tiles_url)}; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'self'"
    ).replace("  ", " ")
