"""Official district contours: `voix districts import`, all or nothing, and point-in-district."""

from __future__ import annotations

import json

from maps.models import District
from maps.services import contains

from .factories import FLAMANTS_SQUARE, add_table, run_voix

# A small square around the Flamants (longitude, latitude), and one in the 15e.
FLAMANTS = FLAMANTS_SQUARE["coordinates"]
KALLISTE = [[[5.360, 43.360], [5.368, 43.360], [5.368, 43.366], [5.360, 43.366], [5.360, 43.360]]]


def feature(name: str, coordinates, code: str = "", kind: str = "Polygon") -> dict:
    return {
        "type": "Feature",
        "properties": {"nom_qp": name, "code_qp": code},
        "geometry": {"type": kind, "coordinates": coordinates},
    }


def write(tmp_path, *features, name: str = "qpv.geojson") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return str(path)


async def boundaries() -> dict[str, tuple]:
    rows = await District.select(
        District.slug, District.boundary, District.approximate, District.source
    )
    return {
        r["slug"]: (
            json.loads(r["boundary"]) if isinstance(r["boundary"], str) else r["boundary"],
            r["approximate"],
            r["source"],
        )
        for r in rows
    }


async def test_import_replaces_approximate_contours_and_adds_new_districts(tmp_path) -> None:
    await add_table("flamants-iris", "avec-nous")  # its district is approximate, empty
    path = write(
        tmp_path,
        feature("Flamants Iris", FLAMANTS, "QN01305M"),
        feature("Kallisté Granière", [KALLISTE], "QN01310M", kind="MultiPolygon"),
    )
    result = run_voix("districts", "import", path)
    assert result.returncode == 0, result.stderr
    assert "Updated 1 district(s): Flamants Iris" in result.stdout
    assert "Added 1 district(s): Kallisté Granière" in result.stdout
    stored = await boundaries()
    boundary, approximate, source = stored["flamants-iris"]
    assert boundary["coordinates"] == FLAMANTS
    assert approximate is False
    assert source == "qpv.geojson (QN01305M)"
    assert stored["kalliste-graniere"][0]["type"] == "MultiPolygon"
    # Importing twice changes nothing more.
    assert run_voix("districts", "import", path).returncode == 0
    assert await District.count() == 2


async def test_a_bad_file_imports_nothing_and_says_why(tmp_path) -> None:
    await add_table("flamants-iris", "avec-nous")
    before = await boundaries()
    lambert = [[[893000, 6247000], [894000, 6247000], [894000, 6248000], [893000, 6247000]]]
    bowtie = [[[5.40, 43.32], [5.41, 43.33], [5.41, 43.32], [5.40, 43.33], [5.40, 43.32]]]
    cases = [
        ("not json {", "not JSON"),
        (json.dumps({"type": "Feature"}), "not a GeoJSON FeatureCollection"),
        (
            write(
                tmp_path,
                feature("Flamants Iris", FLAMANTS),
                feature("Lambert", lambert),
                name="lambert.geojson",
            ),
            "WGS 84",
        ),
        (write(tmp_path, feature("Noeud", bowtie), name="bowtie.geojson"), "invalid contour"),
        (write(tmp_path, feature("", FLAMANTS), name="nameless.geojson"), "no name"),
        (
            write(tmp_path, feature("Un point", [5.4, 43.3], kind="Point"), name="point.geojson"),
            "Polygon or a MultiPolygon",
        ),
    ]
    for content, message in cases:
        file = content
        if not content.endswith(".geojson"):
            (tmp_path / "bad.geojson").write_text(content)
            file = str(tmp_path / "bad.geojson")
        result = run_voix("districts", "import", file)
        assert result.returncode == 1, message
        assert "Nothing was imported" in result.stderr
        assert message in result.stderr, result.stderr
    assert await boundaries() == before
    missing = run_voix("districts", "import", str(tmp_path / "absent.geojson"))
    assert missing.returncode == 1


def test_a_point_is_inside_a_district_or_not() -> None:
    square = {"type": "Polygon", "coordinates": FLAMANTS}
    assert contains(square, latitude=43.329, longitude=5.41)
    assert not contains(square, latitude=43.36, longitude=5.364)  # in the 15e
    several = {"type": "MultiPolygon", "coordinates": [FLAMANTS, KALLISTE]}
    assert contains(several, latitude=43.363, longitude=5.364)
    assert not contains({"type": "Polygon", "coordinates": []}, latitude=43.3, longitude=5.4)
