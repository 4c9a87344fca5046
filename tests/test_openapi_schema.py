"""The open-data API's description, /schema/openapi.json (issue 17): a valid OpenAPI document
(openapi-spec-validator), which says what the API really takes and answers."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from proposals import feed
from proposals.services import LISTED_STATUSES, SEARCH_MAX
from proposals.themes import THEMES
from tests.factories import add_proposal, build_world

PROPOSALS = "/api/v1/tables/{slug}/proposals"


async def schema_of(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/")
    document: dict[str, Any] = response.json()
    return document


def parameters(schema: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}


def component(schema: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    name = reference["$ref"].removeprefix("#/components/schemas/")
    found: dict[str, Any] = schema["components"]["schemas"][name]
    return found


async def test_the_schema_is_valid_openapi(client: AsyncClient) -> None:
    schema = await schema_of(client)
    assert schema["openapi"].startswith("3.")
    validate(schema)  # raises on any error
    # The validator does find errors: the same document with a broken response.
    broken = {**schema, "paths": {**schema["paths"]}}
    broken["paths"]["/api/v1/tables"] = {"get": {"responses": {"200": {"content": 3}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


async def test_the_schema_describes_the_api_as_it_answers(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Des bancs à l'ombre")
    schema = await schema_of(client)
    assert {
        "/api/v1/tables",
        PROPOSALS,
        "/api/v1/votes/{vote_id}",
        "/api/v1/tables/{slug}/follow-up",
        "/api/v1/organisations/{slug}/follow-up",
    } <= set(schema["paths"])
    assert all(path.startswith("/api/v1/") for path in schema["paths"])  # no HTML page

    given = parameters(schema, PROPOSALS)
    assert set(given) == {"slug", "limit", "cursor", "theme", "status", "district", "q", "sort"}
    assert all(p["description"] for p in given.values())
    limit = given["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, feed.MAX_LIMIT)
    assert limit["default"] == feed.DEFAULT_LIMIT
    assert given["cursor"]["schema"]["maxLength"] == feed.CURSOR_MAX
    assert given["q"]["schema"]["maxLength"] == SEARCH_MAX
    assert given["theme"]["schema"]["enum"] == list(THEMES)
    assert given["status"]["schema"]["enum"] == list(LISTED_STATUSES)
    assert given["sort"]["schema"]["enum"] == ["recent", "supports"]
    assert given["slug"]["in"] == "path"
    assert given["slug"]["required"] is True

    answers = schema["paths"][PROPOSALS]["get"]["responses"]
    assert {"200", "304", "400", "404"} <= set(answers)
    assert "ETag" in answers["200"]["headers"]
    page = component(schema, answers["200"]["content"]["application/json"]["schema"])
    assert set(page["required"]) == {"items", "next", "limit"}
    item = component(schema, page["properties"]["items"]["items"])
    error = component(schema, answers["400"]["content"]["application/json"]["schema"])
    assert set(error["properties"]) == {"status_code", "detail"}
    assert (
        answers["404"]["content"]["application/json"]["schema"]
        == (answers["400"]["content"]["application/json"]["schema"])
    )

    # What the API answers has exactly the fields the schema lists, and no personal one.
    served = (await client.get("/api/v1/tables/flamants-iris/proposals")).json()
    assert set(served) == set(page["properties"])
    assert set(served["items"][0]) == set(item["properties"]) == set(item["required"])
    assert not {"author", "author_name", "recorded_by", "recorded_by_name"} & set(
        item["properties"]
    )
    refused = (await client.get("/api/v1/tables/flamants-iris/proposals?limit=0")).json()
    assert set(refused) == set(error["properties"])

    # The other routes say how they fail too.
    for path in ("/api/v1/votes/{vote_id}", "/api/v1/tables/{slug}/follow-up"):
        assert {"200", "304", "400", "404"} <= set(schema["paths"][path]["get"]["responses"])
    follow_up = parameters(schema, "/api/v1/tables/{slug}/follow-up")
    assert follow_up["page"]["schema"]["minimum"] == 1
