"""/metrics for operators: off by default, behind a bearer token (issue 14, "Production shape")."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import add_proposal, build_world, sign_out
from tests.test_votes import open_vote_on
from voix import jobs, metrics
from voix.settings import ConfigurationError, get_settings

TOKEN = "metrics-token-for-the-tests-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("VOIX_METRICS_TOKEN", TOKEN)
    get_settings.cache_clear()
    # Every scrape reads the database afresh: the tests change it between two scrapes.
    monkeypatch.setattr(metrics, "DATABASE_READ_EVERY_SECONDS", 0.0)
    yield TOKEN
    monkeypatch.undo()
    get_settings.cache_clear()


async def scrape(client: AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_do_not_exist_unless_a_token_is_set(client: AsyncClient) -> None:
    assert get_settings().metrics_token is None
    response = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-the-same-length-012345", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
)
async def test_a_missing_or_wrong_token_is_refused(
    client: AsyncClient, token: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "voix_http_requests" not in response.text
    assert "set-cookie" not in response.headers


async def test_the_right_token_reads_counters_that_grow_by_route_template(
    client: AsyncClient, token: str
) -> None:
    response = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers  # no CSRF cookie, no session: not a browser

    before = await scrape(client)
    for _ in range(2):
        assert (await client.get("/card/7F3KQ2MABCDEFGHJ")).status_code == 200
    assert (await client.get("/votes/987654")).status_code == 404  # a route with an id
    assert (await client.get("/no/such/page/42")).status_code == 404
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "voix_http_requests_total"
    card = {"method": "GET", "route": "/card/{code}"}
    assert grew(requests, **card, status="200") == 2
    assert grew("voix_http_request_duration_seconds_count", **card) == 2
    assert grew("voix_http_request_duration_seconds_sum", **card) > 0
    assert grew(requests, method="GET", route="/votes/{vote_id}", status="404") == 1
    assert grew(requests, method="GET", route="(unmatched)", status="404") == 1
    assert grew(requests, method="GET", route="/metrics", status="200") >= 1

    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(route and ("7F3K" in route or "987654" in route) for route in routes)
    assert value(after, "process_resident_memory_bytes") > 10_000_000


async def test_votes_open_and_jobs_waiting_are_read_from_the_database(
    client: AsyncClient, token: str
) -> None:
    before = await scrape(client)
    assert value(before, "voix_votes_open") == 0
    assert value(before, "voix_jobs_waiting") == 0

    world = await build_world()
    await open_vote_on(client, world, await add_proposal(world.table_a))
    sign_out(client)
    # Opening the vote queued the sending of its notifications: one job, counted too.
    opened = await scrape(client)
    assert value(opened, "voix_jobs_waiting") == 1
    await jobs.enqueue("metrics.test", {"n": 1})
    await jobs.enqueue("metrics.test", {"n": 2})

    after = await scrape(client)
    assert value(after, "voix_votes_open") == 1
    assert value(after, "voix_jobs_waiting") == 3


async def test_an_unreadable_database_reads_as_unknown_not_zero(
    client: AsyncClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable() -> int:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(metrics, "_count_open_votes", unreachable)
    samples = await scrape(client)  # the process's own metrics still answer
    assert math.isnan(value(samples, "voix_votes_open"))
    assert value(samples, "process_resident_memory_bytes") > 0


def test_a_short_token_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOIX_METRICS_TOKEN", "short")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="VOIX_METRICS_TOKEN"):
        get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()
