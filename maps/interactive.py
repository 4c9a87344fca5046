"""Interactive maps with folium, served whole by the app: Leaflet and its plugins come from
/static, the tiles from the configured URL, nothing else from anywhere.

folium writes inline scripts and styles, and puts text given to it (tooltips, popups) into
JavaScript template literals without escaping it. So: proposals travel as JSON data (folium's
`tojson`) and the browser builds their popups with `textContent`; the few texts folium does
place (district names, the attribution) are HTML-escaped with backticks and dollar signs turned
into entities (a name like "${…}" must not run). The page gets a Content-Security-Policy of its
own listing the hashes of exactly the inline scripts and styles it carries.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import folium
from folium.plugins import FastMarkerCluster
from markupsafe import escape

from maps.svg import rings
from proposals.themes import THEMES

LEAFLET = "/static/leaflet-1.9.4"
CLUSTER = "/static/leaflet.markercluster-1.5.3"
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


def _local_assets(map_: folium.Map, cluster: FastMarkerCluster) -> None:
    map_.default_js = [("leaflet", f"{LEAFLET}/leaflet.js")]
    map_.default_css = [
        ("leaflet_css", f"{LEAFLET}/leaflet.css"),
        ("voix_map_css", "/static/map.css"),
        ("voix_themes_css", "/static/themes.css"),
    ]
    cluster.default_js = [("markerclusterjs", f"{CLUSTER}/leaflet.markercluster.js")]
    cluster.default_css = [
        ("markerclustercss", f"{CLUSTER}/MarkerCluster.css"),
        ("markerclusterdefaultcss", f"{CLUSTER}/MarkerCluster.Default.css"),
    ]


# Each row: latitude, longitude, id, theme (a known slug), title (any text: set as textContent).
MARKER = """
function callback(row) {
  var icon = L.divIcon({
    className: "map-marker-icon", iconSize: [30, 30], iconAnchor: [15, 15],
    html: '<span class="map-marker theme-' + row[3] + '"><svg aria-hidden="true">'
      + '<use href="/static/themes.svg#theme-' + row[3] + '"/></svg></span>'
  });
  var link = document.createElement("a");
  link.href = "/proposals/" + row[2];
  link.target = "_top";
  link.textContent = row[4];
  return L.marker([row[0], row[1]], {icon: icon, title: row[4], alt: row[4]}).bindPopup(link);
}
"""


def build(
    districts: list[dict[str, Any]],
    points: list[dict[str, Any]],
    *,
    title: str,
    tiles_url: str,
    attribution: str,
) -> MapPage:
    """The map document: district boundaries, clustered markers by theme, escaped popups."""
    map_ = folium.Map(location=[43.34, 5.39], zoom_start=13, tiles=None, control_scale=True)
    rows = [
        [
            point["latitude"],
            point["longitude"],
            int(point["id"]),
            point["theme"] if point["theme"] in THEMES else "other",
            point["title"],
        ]
        for point in points
    ]
    cluster = FastMarkerCluster(rows, callback=MARKER, name=inert(title))
    _local_assets(map_, cluster)
    map_.get_root().title = inert(title)  # type: ignore[attr-defined]
    folium.TileLayer(tiles=tiles_url, attr=inert(attribution), max_zoom=19).add_to(map_)
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
    bounds += [[row[0], row[1]] for row in rows]
    cluster.add_to(map_)
    if bounds:
        map_.fit_bounds(
            [
                [min(b[0] for b in bounds), min(b[1] for b in bounds)],
                [max(b[0] for b in bounds), max(b[1] for b in bounds)],
            ]
        )
    html = _VIEWPORT.sub(VIEWPORT, map_.get_root().render(), count=1)
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
