"""A static map as SVG: district boundaries, proposals as points, labels. No tiles, no script:
for readers without JavaScript, and for PDFs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

WIDTH = 640
PADDING = 16
MAX_POINTS = 100  # the latest: more, and a phone draws a smear and a list it cannot use;
# the interactive map (every point) and the filtered list are the tools for the rest
DOT = 18  # a dot's radius on the site's map (maps/map.svg), room for its number; viewBox units
RING = 0.2  # the white ring round a dot (its stroke), at most a fifth of its radius wide
LABEL_SIZE = 22  # a district's name: its font size in viewBox units (maps/map.svg, brief_map.svg)
# Bold sans-serif, Latin or Arabic: an average glyph is at most ~0.62 of the font size wide.
LABEL_GLYPH = 0.62


def rings(geometry: dict[str, Any]) -> Iterator[list[list[float]]]:
    """Every ring of a GeoJSON Polygon or MultiPolygon, as [longitude, latitude] pairs."""
    if geometry.get("type") == "Polygon":
        yield from geometry.get("coordinates") or []
    elif geometry.get("type") == "MultiPolygon":
        for polygon in geometry.get("coordinates") or []:
            yield from polygon


def layout(
    districts: list[dict[str, Any]],
    points: list[dict[str, Any]],
    *,
    dot: float = DOT,
    box: tuple[float, float] | None = None,
) -> dict[str, Any] | None:
    """Projected shapes for the template; None when there is nothing to draw.

    Dots that would cover one another are fanned out (see `fan_out`), for dots of radius `dot`:
    in viewBox units, or, with `box`, in millimetres on paper, the map being drawn as large as
    that box (width, height in mm) allows, its proportions kept (the brief's PDF). The result
    says the radius in viewBox units ("dot") and, with a box, the millimetres a unit takes ("mm").
    """
    coordinates = [
        (lon, lat) for d in districts for ring in rings(d["boundary"]) for lon, lat in ring
    ]
    coordinates += [(p["longitude"], p["latitude"]) for p in points]
    if not coordinates:
        return None
    west, east = min(c[0] for c in coordinates), max(c[0] for c in coordinates)
    south, north = min(c[1] for c in coordinates), max(c[1] for c in coordinates)
    squeeze = math.cos(math.radians((north + south) / 2))  # metres per degree of longitude
    span_x = max((east - west) * squeeze, 1e-6)
    span_y = max(north - south, 1e-6)
    scale = (WIDTH - 2 * PADDING) / span_x
    height = round(span_y * scale + 2 * PADDING)

    def project(lon: float, lat: float) -> tuple[float, float]:
        return (
            round(PADDING + (lon - west) * squeeze * scale, 1),
            round(PADDING + (north - lat) * scale, 1),
        )

    shapes = []
    for district in districts:
        projected = [
            [project(lon, lat) for lon, lat in ring] for ring in rings(district["boundary"])
        ]
        if projected:
            shapes.append(
                {
                    "name": district["name"],
                    "approximate": district.get("approximate", False),
                    "path": " ".join(
                        "M" + " L".join(f"{x} {y}" for x, y in ring) + " Z" for ring in projected
                    ),
                    "rings": projected,  # for its label, placed once the dots are (below)
                }
            )
    dots = [
        {**point, "x": project(point["longitude"], point["latitude"])[0],
         "y": project(point["longitude"], point["latitude"])[1]}
        for point in points[:MAX_POINTS]
    ]  # fmt: skip
    drawn: dict[str, Any] = {"width": WIDTH, "height": height, "districts": shapes}
    if box is not None:
        drawn["mm"] = min(box[0] / WIDTH, box[1] / height)
        dot = dot / drawn["mm"]
    drawn["dot"] = round(dot, 2)
    drawn["points"] = fan_out(dots, dot, WIDTH, height)
    for shape in shapes:
        shape["label"] = place_label(shape.pop("rings"), shape["name"], drawn["points"], dot)
    return drawn


def place_label(
    rings_xy: list[list[tuple[float, float]]],
    name: str,
    dots: list[dict[str, Any]],
    dot: float,
) -> tuple[float, float]:
    """Where a district's name goes (its text's middle, on its baseline): the middle of its
    outline, or, where dots would cover the name there, the place inside the district, on a
    line across it, that the fewest dots cover, the nearest to the middle among those. In the
    demo, Les Flamants-Iris sat under a numbered dot at its middle. Among equals, one whose
    ends stay inside the outline."""
    xs = [x for ring in rings_xy for x, _ in ring]
    ys = [y for ring in rings_xy for _, y in ring]
    middle = (sum(xs) / len(xs), sum(ys) / len(ys))
    top, bottom = min(ys), max(ys)
    left, right = min(xs), max(xs)
    steps = (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.12, 0.88)
    candidates = [middle]
    candidates += [(middle[0], top + f * (bottom - top)) for f in steps]
    candidates += [(left + f * (right - left), middle[1]) for f in steps]
    half = LABEL_GLYPH * LABEL_SIZE * len(name) / 2
    reach = dot * (1 + RING)

    def covering(at: tuple[float, float]) -> int:
        x0, x1 = at[0] - half, at[0] + half
        y0, y1 = at[1] - 0.75 * LABEL_SIZE, at[1] + 0.25 * LABEL_SIZE
        return sum(
            1
            for d in dots
            if math.dist((d["x"], d["y"]), (min(max(d["x"], x0), x1), min(max(d["y"], y0), y1)))
            < reach
        )

    def ends_outside(at: tuple[float, float]) -> int:
        y = at[1] - 0.25 * LABEL_SIZE
        return sum(not _inside((x, y), rings_xy) for x in (at[0] - half, at[0] + half))

    inside = [c for c in candidates if c is middle or _inside(c, rings_xy)]
    best = min(inside, key=lambda c: (covering(c), ends_outside(c), math.dist(c, middle)))
    return round(best[0], 1), round(best[1], 1)


def _inside(at: tuple[float, float], rings_xy: list[list[tuple[float, float]]]) -> bool:
    """Whether `at` is inside the outline (even-odd: a hole's ring takes it out again)."""
    x, y = at
    inside = False
    for ring in rings_xy:
        for (ax, ay), (bx, by) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                inside = not inside
    return inside


def fan_out(
    dots: list[dict[str, Any]], dot: float, width: float, height: float
) -> list[dict[str, Any]]:
    """Dots that would cover one another (proposals at one place: a named place is shared; or
    a few metres apart) drawn on rings around their places, every number in sight: the list
    beside the map numbers them alike. A dot moved keeps its place as `at` (x, y), for the
    line drawn back to it; one left where it is has `at` None. A fan, or a dot, at the
    picture's edge moves inside it (its lines still reach the places); one that then covers
    another dot, or another fan, becomes one fan with it, until none covers any other. (Up to
    what the picture holds, some 190 dots on the site's map: more, up to MAX_POINTS, leave it.)
    """
    ring = RING * dot
    spacing = 2 * dot + ring  # centre to centre: two fanned-out dots, their rings apart
    order = {id(point): n for n, point in enumerate(dots)}
    same: dict[tuple[float, float], list[dict[str, Any]]] = {}
    for point in dots:
        point["at"] = (point["x"], point["y"])
        same.setdefault(point["at"], []).append(point)
    groups = list(same.values())
    while True:
        fans = [_fan(group, dot, spacing, width, height) for group in groups]
        # Which fans (or lone dots) cover one another: each becomes one with the first it meets.
        parent = list(range(len(fans)))
        for a in range(len(fans)):
            for b in range(a + 1, len(fans)):
                (ax, ay, a_reach), (bx, by, b_reach) = fans[a], fans[b]
                if math.dist((ax, ay), (bx, by)) < a_reach + b_reach + ring - 0.01:
                    parent[_root(parent, b)] = _root(parent, a)
        if all(parent[n] == n for n in range(len(fans))):
            break
        merged: dict[int, list[dict[str, Any]]] = {}
        for n, group in enumerate(groups):
            merged.setdefault(_root(parent, n), []).extend(group)
        # Round each fan from the top, clockwise, in the order of the list.
        groups = [sorted(group, key=lambda point: order[id(point)]) for group in merged.values()]
    for point in dots:
        if point["at"] == (point["x"], point["y"]):
            point["at"] = None
    return dots


def _root(parent: list[int], n: int) -> int:
    """The fan that `n` has become one with (a union-find's root)."""
    while parent[n] != n:
        parent[n] = parent[parent[n]]
        n = parent[n]
    return n


def _fan(
    group: list[dict[str, Any]], dot: float, spacing: float, width: float, height: float
) -> tuple[float, float, float]:
    """Draws the group's dots on rings around the middle of their places, the first ring
    wide enough for a line to show between the place and each dot; the next rings each a dot
    further out, as many on each as fit. Returns the fan's centre and how far it reaches."""
    places = [point["at"] for point in group]
    x = sum(p[0] for p in places) / len(places)
    y = sum(p[1] for p in places) / len(places)
    if len(group) == 1:  # where it is, or just inside the picture if its place is at the edge
        margin = dot + (spacing - 2 * dot) / 2  # its ring inside too
        x = min(max(x, margin), width - margin) if width > 2 * margin else width / 2
        y = min(max(y, margin), height - margin) if height > 2 * margin else height / 2
        group[0]["x"], group[0]["y"] = round(x, 1), round(y, 1)
        return x, y, dot
    # The first ring: all of them round it when they fit, no more than three dots out.
    radius = max(1.75 * dot, spacing / (2 * math.sin(math.pi / len(group))))
    radius = min(radius, 3 * spacing)
    circles: list[tuple[float, int]] = []
    left = len(group)
    while left:
        fits = max(1, math.floor(math.pi / math.asin(min(1.0, spacing / (2 * radius))) + 1e-9))
        circles.append((radius, min(left, fits)))
        left -= circles[-1][1]
        radius += spacing
    reach = circles[-1][0] + dot
    margin = reach + (spacing - 2 * dot) / 2
    cx = min(max(x, margin), width - margin) if width > 2 * margin else width / 2
    cy = min(max(y, margin), height - margin) if height > 2 * margin else height / 2
    points = iter(group)
    for k, (radius, count) in enumerate(circles):
        turn = math.pi / count if k % 2 else 0  # every other ring half a step round
        for n in range(count):
            angle = -math.pi / 2 + turn + 2 * math.pi * n / count
            point = next(points)
            point["x"] = round(cx + radius * math.cos(angle), 1)
            point["y"] = round(cy + radius * math.sin(angle), 1)
    return cx, cy, reach
