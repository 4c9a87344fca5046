"""Districts and their boundaries: importing official contours, and asking what lies inside.

Official QPV contours come from data.gouv.fr as GeoJSON in WGS 84. An import is checked whole
before anything is written: one bad feature and nothing changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maps.models import District, Place
from tables.models import TableDistrict
from voix import db
from voix.forms import ascii_slug

NAME_KEYS = ("nom_qp", "lib_qp", "NOM_QP", "LIB_QP", "nom", "name", "NOM")
CODE_KEYS = ("code_qp", "CODE_QP", "code_quartier", "code", "CODE")
POSTCODE_KEYS = ("code_postal", "CODE_POSTAL", "postcode")


class DistrictFileError(Exception):
    """What is wrong with a file, feature by feature; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportReport:
    updated: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Contour:
    slug: str
    name: str
    code: str
    postcode: str
    geometry: dict[str, Any]


def slugify(name: str) -> str:
    return ascii_slug(name)[:64]


def _first(properties: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        if properties.get(key):
            return str(properties[key]).strip()
    return ""


def _in_wgs84(geometry: Any) -> bool:
    minx, miny, maxx, maxy = geometry.bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def read_contours(text: str) -> list[Contour]:
    """Every feature of a GeoJSON FeatureCollection, checked; raises with all the problems."""
    from shapely.geometry import shape  # noqa: PLC0415 — with numpy, 0.2 s at start-up
    from shapely.validation import explain_validity  # noqa: PLC0415

    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistrictFileError([f"not JSON: {error}"]) from error
    features = document.get("features") if isinstance(document, dict) else None
    if document.get("type") != "FeatureCollection" or not isinstance(features, list):
        raise DistrictFileError(["not a GeoJSON FeatureCollection"])
    contours, problems, seen = [], [], set()
    for number, feature in enumerate(features, start=1):
        properties = feature.get("properties") or {}
        name = _first(properties, NAME_KEYS)
        where = f"feature {number}" + (f" ({name})" if name else "")
        geometry_json = feature.get("geometry") or {}
        if not name or not slugify(name):
            problems.append(f"{where}: no name (looked for {', '.join(NAME_KEYS)})")
            continue
        if geometry_json.get("type") not in ("Polygon", "MultiPolygon"):
            problems.append(f"{where}: the geometry must be a Polygon or a MultiPolygon")
            continue
        try:
            geometry = shape(geometry_json)
        except (ValueError, TypeError, AttributeError, IndexError) as error:
            problems.append(f"{where}: unreadable geometry ({error})")
            continue
        if not _in_wgs84(geometry):
            problems.append(
                f"{where}: coordinates are not longitude/latitude (WGS 84); "
                "reproject the file first (e.g. from Lambert 93, EPSG:2154)"
            )
            continue
        if not geometry.is_valid:
            problems.append(f"{where}: invalid contour ({explain_validity(geometry)})")
            continue
        slug = slugify(name)
        if slug in seen:
            problems.append(f"{where}: a second district with the same name")
            continue
        seen.add(slug)
        contours.append(
            Contour(
                slug=slug,
                name=name[:120],
                code=_first(properties, CODE_KEYS)[:40],
                postcode=_first(properties, POSTCODE_KEYS)[:5],
                geometry=geometry_json,
            )
        )
    if problems:
        raise DistrictFileError(problems)
    if not contours:
        raise DistrictFileError(["no feature in the file"])
    return contours


async def import_contours(path: Path, text: str) -> ImportReport:
    """Replaces the boundaries of districts with the same name, adds the others."""
    contours = read_contours(text)
    report = ImportReport()
    async with db.write_transaction():
        for contour in contours:
            source = f"{path.name}" + (f" ({contour.code})" if contour.code else "")
            existing = await District.select(District.id).where(District.slug == contour.slug)
            if existing:
                await District.update(
                    {
                        District.boundary: contour.geometry,
                        District.approximate: False,
                        District.source: source[:200],
                    }
                ).where(District.slug == contour.slug)
                report.updated.append(contour.name)
            else:
                await District.insert(
                    District(
                        slug=contour.slug,
                        name=contour.name,
                        postcode=contour.postcode,
                        boundary=contour.geometry,
                        approximate=False,
                        source=source[:200],
                    )
                )
                report.created.append(contour.name)
    return report


def contains(boundary: Any, latitude: float, longitude: float) -> bool:
    """Whether a point lies within a district's boundary (GeoJSON, WGS 84)."""
    from shapely.geometry import Point, shape  # noqa: PLC0415 — as read_contours

    geometry = boundary if isinstance(boundary, dict) else json.loads(boundary)
    try:
        return bool(shape(geometry).covers(Point(longitude, latitude)))
    except (ValueError, TypeError, AttributeError, IndexError):
        return False


async def districts_of(table_ids: list[int]) -> list[dict[str, Any]]:
    """The districts of these tables (each once), with their boundaries, in one query."""
    if not table_ids:
        return []
    rows = await TableDistrict.select(
        TableDistrict.district.id.as_alias("id"),
        TableDistrict.district.name.as_alias("name"),
        TableDistrict.district.boundary.as_alias("boundary"),
        TableDistrict.district.approximate.as_alias("approximate"),
    ).where(TableDistrict.table.is_in(table_ids))
    unique: dict[int, dict[str, Any]] = {}
    for row in rows:
        if isinstance(row["boundary"], str):
            row["boundary"] = json.loads(row["boundary"])
        unique.setdefault(row["id"], row)
    return list(unique.values())


async def districts_for_map(table_ids: list[int] | None) -> tuple[list[dict[str, Any]], str]:
    """The districts of these tables (None: of every table), each once, and a digest of all
    that a map draws of them (names, boundaries, whether approximate), in one query."""
    query = TableDistrict.select(
        TableDistrict.district.id.as_alias("id"),
        TableDistrict.district.name.as_alias("name"),
        TableDistrict.district.boundary.as_alias("boundary"),
        TableDistrict.district.approximate.as_alias("approximate"),
    ).order_by(TableDistrict.district.id)
    if table_ids is not None:
        if not table_ids:
            return [], hashlib.sha256(b"").hexdigest()
        query = query.where(TableDistrict.table.is_in(table_ids))
    digest = hashlib.sha256()
    unique: dict[int, dict[str, Any]] = {}
    for row in await query:
        if row["id"] in unique:
            continue
        boundary = row["boundary"]
        text = boundary if isinstance(boundary, str) else json.dumps(boundary, sort_keys=True)
        digest.update(f"{row['id']}\0{row['name']}\0{row['approximate']}\0{text}\0".encode())
        unique[row["id"]] = row
    return list(unique.values()), digest.hexdigest()


def parsed(districts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The districts with their boundaries as GeoJSON objects (read as text on some drivers)."""
    return [
        {**d, "boundary": json.loads(d["boundary"])} if isinstance(d["boundary"], str) else d
        for d in districts
    ]


async def table_districts(table_id: int) -> list[dict[str, Any]]:
    return await districts_of([table_id])


async def places_for_table(table_id: int) -> list[dict[str, Any]]:
    """The named places of the table's districts, by district then name."""
    districts = [d["id"] for d in await table_districts(table_id)]
    if not districts:
        return []
    return await (
        Place.select(
            Place.id,
            Place.name,
            Place.latitude,
            Place.longitude,
            Place.district,
            Place.district.name.as_alias("district_name"),
        )
        .where(Place.district.is_in(districts))
        .order_by(Place.district.name)
        .order_by(Place.name)
    )


def district_at(districts: list[dict[str, Any]], latitude: float, longitude: float) -> int | None:
    """The id of the district (among these) that holds the point."""
    for district in districts:
        if contains(district["boundary"], latitude, longitude):
            return int(district["id"])
    return None
