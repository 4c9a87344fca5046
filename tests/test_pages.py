"""Public pages, languages, health and the open-data API, through the real app."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient

from tests.factories import add_proposal, build_world, t
from voix import db
from voix.db import engine_from_url


def html_lang(body: str) -> tuple[str, str]:
    match = re.search(r'<html lang="(\w+)" dir="(\w+)">', body)
    assert match, body[:200]
    return match.group(1), match.group(2)


async def test_home_lists_tables_by_organisation(client: AsyncClient) -> None:
    await build_world()
    response = await client.get("/")
    assert response.status_code == 200
    assert "Flamants Iris" in response.text
    assert "Les Aygalades" in response.text
    assert "Avec Nous" in response.text


async def test_language_defaults_to_french(client: AsyncClient) -> None:
    response = await client.get("/login")
    assert html_lang(response.text) == ("fr", "ltr")
    assert t("Sign in") in response.text


async def test_accept_language_chooses_arabic_right_to_left(client: AsyncClient) -> None:
    response = await client.get("/login", headers={"accept-language": "ar-MA,ar;q=0.9,fr;q=0.5"})
    assert html_lang(response.text) == ("ar", "rtl")
    assert response.headers["content-language"] == "ar"


async def test_lang_parameter_is_remembered_over_accept_language(client: AsyncClient) -> None:
    first = await client.get("/login?lang=en")
    assert html_lang(first.text) == ("en", "ltr")
    assert "Sign in" in first.text
    later = await client.get("/", headers={"accept-language": "ar"})
    assert html_lang(later.text) == ("en", "ltr")


async def test_every_page_links_to_every_language(client: AsyncClient) -> None:
    world = await build_world()
    response = await client.get(f"/tables/{world.table_a['slug']}?theme=housing")
    for code in ("fr", "ar", "en"):
        assert f'href="?theme=housing&amp;lang={code}"' in response.text


async def test_table_page_filters_proposals_by_theme_without_javascript(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G", theme="housing")
    await add_proposal(world.table_a, "Un bus toutes les dix minutes", theme="transport")
    everything = await client.get("/tables/flamants-iris")
    assert "tour G" in everything.text
    assert "dix minutes" in everything.text
    housing = await client.get("/tables/flamants-iris?theme=housing")
    assert "tour G" in housing.text
    assert "dix minutes" not in housing.text
    assert "<html" in housing.text


async def test_htmx_filter_returns_only_the_proposals_fragment(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G", theme="housing")
    await add_proposal(world.table_a, "Un bus toutes les dix minutes", theme="transport")
    response = await client.get(
        "/tables/flamants-iris?theme=transport",
        headers={"hx-request": "true", "hx-target": "proposals"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "<header" not in response.text
    assert "dix minutes" in response.text
    assert "tour G" not in response.text


async def test_unknown_theme_filter_shows_everything(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G", theme="housing")
    response = await client.get("/tables/flamants-iris?theme=<script>")
    assert response.status_code == 200
    assert "tour G" in response.text
    assert "<script>" not in response.text


async def test_unknown_pages_are_translated_404s(client: AsyncClient) -> None:
    for url in ("/tables/nowhere", "/proposals/999999", "/votes/999999", "/briefs/none", "/nope"):
        response = await client.get(url, headers={"accept-language": "fr"})
        assert response.status_code == 404, url
        assert t("This page does not exist, or no longer exists.") in response.text


async def test_health_reports_the_database(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.filterwarnings("ignore:.*Unable to connect to database")
async def test_health_is_503_when_the_database_is_unreachable(
    client: AsyncClient, monkeypatch
) -> None:
    unreachable = engine_from_url("postgresql://postgres@127.0.0.1:9/nothing")
    monkeypatch.setattr(db, "engine", lambda: unreachable)
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_open_data_api_and_its_schema(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    tables = (await client.get("/api/v1/tables")).json()
    assert {t["slug"] for t in tables} == {"flamants-iris", "les-aygalades"}
    proposals = (await client.get("/api/v1/tables/flamants-iris/proposals")).json()["items"]
    assert proposals[0]["title"] == "Réparer les ascenseurs de la tour G"
    assert "author" not in proposals[0]
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/tables" in schema["paths"]
    assert not any(path.startswith("/tables") for path in schema["paths"])
    assert (await client.get("/api/v1/tables/nowhere/proposals")).status_code == 404


async def test_pages_load_nothing_from_other_hosts(client: AsyncClient) -> None:
    await build_world()
    response = await client.get("/")
    assert not re.search(r'(src|href)="(https?:)?//', response.text)
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_dates_are_shown_in_marseille_time() -> None:
    from datetime import UTC, datetime

    from voix.i18n import current_language, date

    token = current_language.set("fr")
    try:
        assert date(datetime(2026, 11, 21, 23, 30, tzinfo=UTC)) == "22 novembre 2026"
    finally:
        current_language.reset(token)


async def test_proposals_are_paginated_with_plain_links(client: AsyncClient) -> None:
    world = await build_world()
    for n in range(25):
        await add_proposal(world.table_a, f"Proposition numéro {n:02d}", theme="housing")
    first = await client.get("/tables/flamants-iris?theme=housing")
    assert first.text.count('class="card proposal-card"') == 20
    assert "numéro 24" in first.text
    assert "numéro 04" not in first.text
    assert t("Page %(page)d of %(pages)d", page=1, pages=2) in first.text
    assert 'href="/tables/flamants-iris?theme=housing&amp;page=2"' in first.text
    second = await client.get(
        "/tables/flamants-iris?theme=housing&page=2",
        headers={"hx-request": "true", "hx-target": "proposals"},
    )
    assert "<html" not in second.text
    assert second.text.count('class="card proposal-card"') == 5
    assert 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text
    for odd in ("0", "-1", "abc", "99999999999"):
        response = await client.get(f"/tables/flamants-iris?page={odd}")
        assert response.status_code == 200
        assert "numéro 24" in response.text
    beyond = await client.get("/tables/flamants-iris?page=7")
    assert beyond.status_code == 200
    assert t("No proposal matches these filters.") in beyond.text
