"""Placing a proposal: a named place, or a point that must be inside the table's districts;
the static map draws them, with every text inert."""

from __future__ import annotations

from maps.models import Place
from proposals.models import Proposal

from .factories import FLAMANTS_SQUARE, build_world, draw_district, post_form, sign_in, t

FORM = {
    "title": "Un banc devant la tour G",
    "body": "Pour attendre le bus assis.",
    "theme": "public_space",
}


async def setup() -> tuple:
    world = await build_world()
    district_a = await draw_district(world.table_a, FLAMANTS_SQUARE)
    district_b = await draw_district(world.table_b, FLAMANTS_SQUARE)
    tower = await Place.insert(
        Place(district=district_a, name="Tour G", latitude=43.329, longitude=5.41)
    ).returning(Place.id)
    elsewhere = await Place.insert(
        Place(district=district_b, name="Place d'une autre table", latitude=43.33, longitude=5.41)
    ).returning(Place.id)
    return world, tower[0]["id"], elsewhere[0]["id"]


async def test_a_named_place_or_a_point_inside_places_the_proposal(client) -> None:
    world, tower, _ = await setup()
    await sign_in(client, world.users["resident_a"])
    form = await client.get("/tables/flamants-iris/proposals/new")
    assert "Tour G" in form.text
    assert "Place d&#39;une autre table" not in form.text
    by_name = await post_form(
        client, "/tables/flamants-iris/proposals", {**FORM, "place": str(tower)}
    )
    assert by_name.status_code == 303
    by_point = await post_form(
        client,
        "/tables/flamants-iris/proposals",
        {
            **FORM,
            "title": "<script>alert('map')</script> Un abri",
            "latitude": "43.327",
            "longitude": "5.407",
        },
    )
    assert by_point.status_code == 303
    rows = await Proposal.select(Proposal.latitude, Proposal.longitude).order_by(Proposal.id)
    assert [(r["latitude"], r["longitude"]) for r in rows] == [(43.329, 5.41), (43.327, 5.407)]

    page = await client.get("/tables/flamants-iris")
    assert page.text.count('<circle class="point"') == 2
    assert "<script>alert(&#39;map&#39;)</script>" not in page.text
    assert (
        "&lt;script&gt;alert(&#39;map&#39;)&lt;/script&gt; Un abri" in page.text
    )  # in the SVG's <title>


async def test_points_outside_and_places_of_other_tables_are_refused(client) -> None:
    world, _, elsewhere = await setup()
    await sign_in(client, world.users["resident_a"])
    for extra in (
        {"latitude": "43.36", "longitude": "5.36"},  # the 15e
        {"latitude": "91", "longitude": "5.41"},
        {"latitude": "nord", "longitude": "5.41"},
        # float() reads these as a point inside the square: only plain decimals are coordinates.
        {"latitude": "٤٣.٣٢٧", "longitude": "5.407"},
        {"latitude": "4_3.327", "longitude": "5.407"},
        {"latitude": " 43.327", "longitude": "5.407"},
        {"latitude": "nan", "longitude": "5.407"},
    ):
        refused = await post_form(
            client, "/tables/flamants-iris/proposals?lang=ar", {**FORM, **extra}
        )
        assert refused.status_code == 400, extra
        assert (
            t("This point is outside the table's districts. Choose a place inside them.", "ar")
            in refused.text
        )
    other = await post_form(
        client, "/tables/flamants-iris/proposals?lang=fr", {**FORM, "place": str(elsewhere)}
    )
    assert other.status_code == 400
    assert t("Choose one of the places of this table's districts.") in other.text
    assert await Proposal.count() == 0
