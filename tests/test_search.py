"""The table's list: text search, filters, sorting and pages, with and without htmx."""

from __future__ import annotations

import re
from html import unescape

from proposals.models import Proposal

from .conftest import DATABASE_KIND
from .factories import add_proposal, build_world, t


def titles(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<a href="/proposals/\d+">([^<]+)</a>', html)]


async def test_text_search_theme_status_and_sort_combine(client) -> None:
    world = await build_world()
    lifts = await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    await add_proposal(
        world.table_a, "Un contrat d'entretien", body="Les ascenseurs tombent en panne."
    )
    bus = await add_proposal(
        world.table_a, "Un bus le soir", theme="transport", body="Le 38 s'arrête à 20 h."
    )
    await add_proposal(world.table_b, "Ascenseurs des Aygalades")  # another table
    await Proposal.update({Proposal.supports: 5, Proposal.status: "discussion"}).where(
        Proposal.id == bus
    )
    await Proposal.update({Proposal.supports: 2}).where(Proposal.id == lifts)

    found = await client.get("/tables/flamants-iris", params={"q": "ascenseur"})
    assert sorted(titles(found.text)) == [
        "Réparer les ascenseurs de la tour G",
        "Un contrat d'entretien",
    ]
    assert 'value="ascenseur"' in found.text
    themed = await client.get("/tables/flamants-iris", params={"theme": "transport"})
    assert titles(themed.text) == ["Un bus le soir"]
    status = await client.get("/tables/flamants-iris", params={"status": "discussion"})
    assert titles(status.text) == ["Un bus le soir"]
    ranked = await client.get("/tables/flamants-iris", params={"sort": "supports"})
    assert titles(ranked.text)[:2] == ["Un bus le soir", "Réparer les ascenseurs de la tour G"]
    nothing = await client.get(
        "/tables/flamants-iris", params={"q": "ascenseur", "theme": "transport"}
    )
    assert titles(nothing.text) == []
    assert t("No proposal matches these filters.") in nothing.text


async def test_french_stemming_on_postgresql_substrings_on_both(client) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les escaliers", body="Les cages sont sales.")
    await add_proposal(world.table_a, "Des bancs", body="Devant l'école.")
    response = await client.get("/tables/flamants-iris", params={"q": "ESCALIER"})
    assert titles(response.text) == ["Réparer les escaliers"]
    accented = await client.get("/tables/flamants-iris", params={"q": "réparer"})
    assert titles(accented.text) == ["Réparer les escaliers"]
    stemmed = await client.get("/tables/flamants-iris", params={"q": "réparation"})
    # French stemming: "réparation" and "réparer" share the stem "répar" on PostgreSQL.
    expected = ["Réparer les escaliers"] if DATABASE_KIND == "postgres" else []
    assert titles(stemmed.text) == expected


async def test_odd_input_is_inert_and_unknown_filters_fall_back(client) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Des bancs")
    for q in ("%' OR 1=1 --", "_", "%", '<script>alert("q")</script>'):
        response = await client.get("/tables/flamants-iris", params={"q": q})
        assert response.status_code == 200
        assert titles(response.text) == [], q
        assert "<script>alert" not in response.text
    odd = await client.get(
        "/tables/flamants-iris", params={"theme": "nope", "status": "x", "sort": "y", "page": "-3"}
    )
    assert titles(odd.text) == ["Des bancs"]


async def test_pages_keep_the_filters_and_htmx_gets_the_list_only(client) -> None:
    world = await build_world()
    for n in range(45):
        await add_proposal(
            world.table_a, f"Idée numéro {n:02d}", theme="youth" if n % 2 else "housing"
        )
    first = await client.get("/tables/flamants-iris", params={"theme": "youth"})
    assert len(titles(first.text)) == 20
    assert 'href="/tables/flamants-iris?theme=youth&amp;page=2"' in first.text
    fragment = await client.get(
        "/tables/flamants-iris",
        params={"theme": "youth", "page": "2"},
        headers={"hx-request": "true", "hx-target": "proposals"},
    )
    assert "<html" not in fragment.text
    assert len(titles(fragment.text)) == 2  # 22 youth ideas: 20 + 2
    assert t("Page %(page)d of %(pages)d", page=2, pages=2) in fragment.text


async def test_the_district_filter_lists_proposals_placed_in_it(client) -> None:
    from maps.models import District
    from tables.models import TableDistrict

    world = await build_world()
    other = await District.insert(
        District(slug="saint-barthelemy", name="Saint-Barthélémy", postcode="13014", boundary={})
    ).returning(District.id)
    await TableDistrict.insert(TableDistrict(table=world.table_a["id"], district=other[0]["id"]))
    first = (
        await TableDistrict.select(TableDistrict.district)
        .where(TableDistrict.table == world.table_a["id"])
        .order_by(TableDistrict.id)
        .first()
    )["district"]
    await add_proposal(world.table_a, "Aux Flamants", district=first)
    await add_proposal(world.table_a, "À Saint-Barthélémy", district=other[0]["id"])
    await add_proposal(world.table_a, "Sans lieu")
    page = await client.get("/tables/flamants-iris")
    assert 'name="district"' in page.text  # two districts: the filter is offered
    filtered = await client.get("/tables/flamants-iris", params={"district": "saint-barthelemy"})
    assert titles(filtered.text) == ["À Saint-Barthélémy"]
    odd = await client.get("/tables/flamants-iris", params={"district": "<x>"})
    assert len(titles(odd.text)) == 3
