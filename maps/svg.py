"""A static map as SVG: district boundaries, proposals as points, labels. No tiles, no script:
for readers without JavaScript, and for PDFs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

WIDTH = 640
PADDING = 16
MAX_POINTS = 500  # the latest; beyond that a static map is a smear, the list is the tool


def rings(geometry: dict[str, Any]) -> Iterator[list[list[float]]]:
    """Every ring of a GeoJSON Polygon or MultiPolygon, as [longitude, latitude] pairs."""
    if geometry.get("type") == "Polygon":
        yield from geometry.get("coordinates") or []
    elif geometry.get("type") == "MultiPolygon":
        for polygon in geometry.get("coordinates") or []:
            yield from polygon


def layout(districts: list[dict[str, Any]], points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Projected shapes for the template; None when there is nothing to draw."""
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
        paths = []
        xs, ys = [], []
        for ring in rings(district["boundary"]):
            projected = [project(lon, lat) for lon, lat in ring]
            xs += [x for x, _ in projected]
            ys += [y for _, y in projected]
            paths.append("M" + " L".join(f"{x} {y}" for x, y in projected) + " Z")
        if paths:
            shapes.append(
                {
                    "name": district["name"],
                    "approximate": district.get("approximate", False),
                    "path": " ".join(paths),
                    "label": (round(sum(xs) / len(xs), 1), round(sum(ys) / len(ys), 1)),
                }
            )
    dots = [
        {**point, "x": project(point["longitude"], point["latitude"])[0],
         "y": project(point["longitude"], point["latitude"])[1]}
        for point in points[:MAX_POINTS]
    ]  # fmt: skip
    return {"width": WIDTH, "height": height, "districts": shapes, "points": dots}
