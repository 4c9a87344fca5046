"""The open-data API's proposals (issue 17): cursor pagination that never skips nor repeats a
proposal while others are added, the list page's filters, ETag / If-None-Match, nothing
personal, and errors as translated JSON."""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from httpx import AsyncClient

from accounts.services import create_user
from maps.models import District
from proposals import feed
from proposals import services as proposals
from proposals.models import Comment, Proposal
from tables.models import TableDistrict
from tests.factories import PASSWORD, add_proposal, build_world, sign_in
from voix import opendata
from voix.i18n import catalog

API = "/api/v1/tables/flamants-iris/proposals"
BASE = "http://testserver.local"  # VOIX_BASE_URL in tests/conftest.py
T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
THEMES = ("housing", "transport", "school")
STATUSES = ("submitted", "discussion", "adopted")


def gettext(msgid: str, lang: str = "fr", **params: Any) -> str:
    text = catalog(lang).gettext(msgid)
    return text % params if params else text


async def seed(table: dict[str, Any], count: int, *, start: int = 0, **fields: Any) -> list[int]:
    """`count` proposals in one statement; every third shares its created_at with the one
    before it (ties broken by id), and themes, statuses and supports vary."""
    rows = [
        Proposal(
            table=table["id"],
            title=f"Proposition {n:03d} pour le quartier",
            body=f"Le texte de la proposition {n:03d}.",
            theme=THEMES[n % 3],
            language="fr",
            status=STATUSES[n % 3],
            supports=n % 4,
            created_at=T0 + timedelta(minutes=n - n % 3 // 2),
            **fields,
        )
        for n in range(start, start + count)
    ]
    inserted = await Proposal.insert(*rows).returning(Proposal.id)
    return [row["id"] for row in inserted]


async def listed(table: dict[str, Any], **filters: Any) -> list[int]:
    """What the table's list shows for these filters, in its order (proposals.services)."""
    found = await proposals.page_for_table(
        table["id"], replace(proposals.Filters(), **filters), size=10_000
    )
    return [row["id"] for row in found.items]


async def walk(client: AsyncClient, url: str, **headers: str) -> tuple[list[int], list[dict]]:
    """Follows `next` to the end: the ids in the order served, and every page."""
    ids: list[int] = []
    pages = []
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        ids += [item["id"] for item in page["items"]]
        url = page["next"]
        if url:
            assert url.startswith(BASE + API + "?"), url
            url = url.removeprefix(BASE)
    return ids, pages


async def test_pages_walk_every_listed_proposal_once_in_the_lists_order(client) -> None:
    world = await build_world()
    ids = await seed(world.table_a, 23)
    await seed(world.table_b, 4)  # another table's: never listed here
    hidden, merged = ids[3], ids[4]
    await Proposal.update({Proposal.hidden_at: datetime.now(UTC)}).where(Proposal.id == hidden)
    await Proposal.update({Proposal.status: "merged", Proposal.merged_into: ids[0]}).where(
        Proposal.id == merged
    )
    expected = await listed(world.table_a)
    assert len(expected) == 21
    assert hidden not in expected
    assert merged not in expected

    served, pages = await walk(client, f"{API}?limit=5")
    assert served == expected  # each once, newest first as on the page
    assert [len(page["items"]) for page in pages] == [5, 5, 5, 5, 1]
    assert all(page["limit"] == 5 for page in pages)
    assert pages[-1]["next"] is None
    # The limit is kept in the next link; nothing else was asked for.
    query = parse_qs(urlsplit(pages[0]["next"]).query)
    assert query.keys() == {"limit", "cursor"}
    assert query["limit"] == ["5"]
    # The default page holds 50; exactly one page: no next link.
    whole = (await client.get(API)).json()
    assert [item["id"] for item in whole["items"]] == expected
    assert whole["limit"] == feed.DEFAULT_LIMIT
    assert whole["next"] is None
    # Ordered by supports, the same as the page too.
    by_supports, _ = await walk(client, f"{API}?sort=supports&limit=4")
    assert by_supports == await listed(world.table_a, sort="supports") != expected


async def test_the_limit_is_bounded_and_defaults_to_fifty(client) -> None:
    world = await build_world()
    await seed(world.table_a, feed.MAX_LIMIT + 1)
    first = (await client.get(API)).json()
    assert len(first["items"]) == feed.DEFAULT_LIMIT == 50
    assert first["next"] is not None
    largest = (await client.get(f"{API}?limit={feed.MAX_LIMIT}")).json()
    assert len(largest["items"]) == feed.MAX_LIMIT
    assert largest["next"] is not None
    last = await client.get(largest["next"].removeprefix(BASE))
    assert len(last.json()["items"]) == 1
    assert last.json()["next"] is None
    message = gettext(opendata.LIMIT_RANGE, max=feed.MAX_LIMIT)
    for refused in ("0", "-1", str(feed.MAX_LIMIT + 1), "99999999999", "abc", "1.5"):
        response = await client.get(f"{API}?limit={refused}")
        assert response.status_code == 400, refused
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"status_code": 400, "detail": message}, refused


async def test_a_cursor_changed_by_hand_or_made_for_another_order_is_refused(client) -> None:
    world = await build_world()
    await seed(world.table_a, 6)
    following = (await client.get(f"{API}?limit=2")).json()["next"]
    cursor = parse_qs(urlsplit(following).query)["cursor"][0]
    payload, signature = cursor.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    # The same position one id further on, well formed but not signed by the site.
    moved = re.sub(rb",(\d+),(\d+)\]$", lambda m: b",%d,%s]" % (int(m[1]) - 1, m[2]), decoded)
    assert moved != decoded
    forged = base64.urlsafe_b64encode(moved).rstrip(b"=").decode() + "." + signature
    by_supports = (await client.get(f"{API}?limit=2&sort=supports")).json()["next"]
    supports_cursor = parse_qs(urlsplit(by_supports).query)["cursor"][0]
    message = gettext(opendata.BAD_CURSOR)
    for bad in (
        forged,
        cursor[:-2],
        cursor + "A",
        "not-a-cursor",
        "....",
        "é" * 10,
        "A" * (feed.CURSOR_MAX + 1),
        supports_cursor,  # made for sort=supports, used for the newest first
    ):
        response = await client.get(API, params={"cursor": bad})
        assert response.status_code == 400, bad
        assert response.json() == {"status_code": 400, "detail": message}, bad
    # The cursor as given works, and an empty one is the first page.
    assert (await client.get(API, params={"cursor": cursor})).status_code == 200
    empty = (await client.get(API, params={"cursor": ""})).json()
    assert len(empty["items"]) == 6


async def test_filters_give_what_the_table_page_lists(client) -> None:
    world = await build_world()
    await seed(world.table_a, 30)
    # A second district of the table, with a few of its proposals placed in it.
    district = await District.insert(
        District(
            slug="la-busserine",
            name="La Busserine",
            postcode="13014",
            boundary={"type": "Polygon", "coordinates": []},
        )
    ).returning(District.id)
    await TableDistrict.insert(TableDistrict(table=world.table_a["id"], district=district[0]["id"]))
    placed = await seed(
        world.table_a,
        4,
        start=100,
        district=district[0]["id"],
        latitude=43.33,
        longitude=5.41,
    )
    ascenseur = await add_proposal(world.table_a, "Réparer l'ascenseur du bâtiment B")
    for filters in (
        {"theme": "housing"},
        {"status": "discussion"},
        {"theme": "school", "status": "adopted"},
        {"district": "la-busserine"},
        {"q": "ascenseur"},
        {"q": "Proposition 01"},
        {"theme": "transport", "sort": "supports"},
    ):
        served, _ = await walk(
            client, f"{API}?limit=3&" + "&".join(f"{k}={v}" for k, v in filters.items())
        )
        expected = await listed(world.table_a, **filters)
        assert served == expected, filters
        assert expected, filters  # each filter finds something, and not everything
        assert len(expected) < 35, filters
    assert await listed(world.table_a, q="ascenseur") == [ascenseur]
    assert set(await listed(world.table_a, district="la-busserine")) == set(placed)

    # The HTML list shows the same ones (fewer than its 20 a page), as htmx asks for it.
    html = await client.get(
        "/tables/flamants-iris?theme=school&status=adopted",
        headers={"hx-request": "true", "hx-target": "proposals"},
    )
    shown = [int(i) for i in re.findall(r'<h3[^>]*><a href="/proposals/(\d+)"', html.text)]
    api = (await client.get(f"{API}?theme=school&status=adopted")).json()
    assert shown
    assert [item["id"] for item in api["items"]] == shown

    # Each item: the proposal's public fields, its place and its page.
    items = {
        item["id"]: item
        for item in (await client.get(f"{API}?district=la-busserine")).json()["items"]
    }
    item = items[placed[0]]
    assert item["district"] == "la-busserine"
    assert item["district_name"] == "La Busserine"
    assert (item["latitude"], item["longitude"]) == (43.33, 5.41)
    assert item["url"] == f"{BASE}/proposals/{placed[0]}"
    unplaced = (await client.get(f"{API}?q=ascenseur")).json()["items"][0]
    assert unplaced["latitude"] is unplaced["longitude"] is unplaced["district"] is None

    # What the page would silently drop, the API refuses, saying what it knows.
    for query, msgid, params in (
        ("theme=gardens", opendata.UNKNOWN_THEME, {"value": "gardens"}),
        ("status=merged", opendata.UNKNOWN_STATUS, {"value": "merged"}),
        ("district=les-aygalades", opendata.UNKNOWN_DISTRICT, {"value": "les-aygalades"}),
        ("sort=oldest", opendata.UNKNOWN_SORT, {"value": "oldest"}),
    ):
        response = await client.get(f"{API}?{query}")
        assert response.status_code == 400, query
        detail = response.json()["detail"]
        prefix = gettext(msgid, **params, known="\x00").partition("\x00")[0]
        assert detail.startswith(prefix), (query, detail)
    district_refused = (await client.get(f"{API}?district=nowhere")).json()["detail"]
    assert district_refused.endswith(
        ("la-busserine, flamants-iris.", "flamants-iris, la-busserine.")
    )
    long_search = await client.get(API, params={"q": "x" * (proposals.SEARCH_MAX + 1)})
    assert long_search.status_code == 400
    assert long_search.json()["detail"] == gettext(opendata.BAD_PARAMETER, name="q")


async def test_paging_while_proposals_are_added_skips_and_repeats_none(client) -> None:
    """A client pages through (limit=7) while others add proposals, some between its pages
    and some while its requests run: it gets every proposal that existed when it started,
    each once; the new ones never push an old one onto the next page."""
    world = await build_world()
    # Existing ones, some of them at the very time the new ones will carry.
    await seed(world.table_a, 40)
    now = datetime.now(UTC)
    for _ in range(3):
        await add_proposal(world.table_a, "Déjà là au départ", created_at=now)
    existing = await listed(world.table_a)
    assert len(existing) == 43
    added: list[int] = []
    done = asyncio.Event()

    async def others_propose() -> None:
        n = 0
        while not done.is_set():
            n += 1
            added.append(await add_proposal(world.table_a, f"Nouvelle {n}", created_at=now))
            added.append(await add_proposal(world.table_a, f"Plus récente {n}"))
            await asyncio.sleep(0)

    async def page_through() -> list[int]:
        try:
            ids: list[int] = []
            url: str | None = f"{API}?limit=7"
            while url:
                await asyncio.sleep(0.01)  # others add some between two pages
                page = (await client.get(url)).json()
                ids += [item["id"] for item in page["items"]]
                url = page["next"] and page["next"].removeprefix(BASE)
            return ids
        finally:
            done.set()

    served, _ = await asyncio.gather(page_through(), others_propose())
    assert len(added) >= 6, "nothing was added while paging"
    assert len(served) == len(set(served)), "a proposal was listed twice"
    assert [i for i in served if i in set(existing)] == existing  # all of them, in order
    assert set(served) - set(existing) <= set(added)


async def test_etag_answers_304_until_the_table_changes(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Des bancs place de la Busserine")
    first = await client.get(API)
    etag = first.headers["etag"]
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', etag)
    assert first.headers["cache-control"] == "no-cache"
    again = await client.get(API, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "content-type" not in again.headers
    # Any of several tags, with or without W/; and the HEAD of it.
    listed_tags = f'"other", {etag.removeprefix("W/")}'
    assert (await client.get(API, headers={"if-none-match": listed_tags})).status_code == 304
    assert (await client.head(API, headers={"if-none-match": etag})).status_code == 304
    # Another page, another filter: another tag.
    other = await client.get(f"{API}?theme=transport", headers={"if-none-match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag
    # A new proposal, a new support count: the tag changes, and the body with it.
    await add_proposal(world.table_a, "Un abri à l'arrêt de bus")
    changed = await client.get(API, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert len(changed.json()["items"]) == 2
    await Proposal.update({Proposal.supports: 3}).where(Proposal.id == proposal)
    supported = await client.get(API, headers={"if-none-match": changed.headers["etag"]})
    assert supported.status_code == 200
    assert supported.headers["etag"] not in (etag, changed.headers["etag"])
    # Every GET of the API has one.
    for path in ("/api/v1/tables", "/api/v1/tables/flamants-iris/follow-up"):
        response = await client.get(path)
        assert response.status_code == 200, path
        tag = response.headers["etag"]
        assert (await client.get(path, headers={"if-none-match": tag})).status_code == 304
    # Errors carry none.
    assert "etag" not in (await client.get(f"{API}?limit=0")).headers


async def test_nothing_hidden_nor_personal_is_published(client) -> None:
    world = await build_world()
    author = await create_user(
        "sentinelle",
        "Zébulon Sentinelle",
        PASSWORD,
        email="zebulon.sentinelle@example.invalid",
    )
    kept = await add_proposal(
        world.table_a,
        "Une proposition recueillie",
        author=author.id,
        recorded_by=world.users["facilitator_a"],
        consent_recorded_at=datetime.now(UTC),
    )
    secret = await add_proposal(
        world.table_a,
        "Titre masqué Xylophone",
        body="Texte masqué Xylophone",
        author=author.id,
    )
    await Proposal.update(
        {Proposal.hidden_at: datetime.now(UTC), Proposal.hidden_reason: "Raison Xylophone"}
    ).where(Proposal.id == secret)
    now = datetime.now(UTC)
    await Comment.insert(
        Comment(proposal=kept, author=author.id, body="Un commentaire", created_at=now),
        Comment(
            proposal=kept, author=author.id, body="Injure Xylophone", created_at=now, hidden_at=now
        ),
    )
    await sign_in(client, author.id)  # what a signed-in author reads is the same
    response = await client.get(API)
    assert [item["id"] for item in response.json()["items"]] == [kept]
    (item,) = response.json()["items"]
    assert item["comments_count"] == 1  # the hidden comment is not counted
    assert set(item) == {
        "id", "title", "body", "theme", "language", "status", "created_at", "district",
        "district_name", "supports", "comments_count", "longitude", "latitude", "url",
    }  # fmt: skip
    text = response.text
    for personal in ("Xylophone", "Sentinelle", "zebulon", "sentinelle", "Facilitator-A"):
        assert personal not in text, personal


async def test_errors_are_json_in_the_readers_language(client) -> None:
    await build_world()
    cases = (
        ("/api/v1/tables/nowhere/proposals", 404, "This page does not exist, or no longer exists."),
        ("/api/v1/no-such-thing", 404, "This page does not exist, or no longer exists."),
        ("/api/v1/tables/flamants-iris/follow-up?page=0", 400, None),
        (f"{API}?limit=500", 400, opendata.LIMIT_RANGE),
        (f"{API}?cursor=abc", 400, opendata.BAD_CURSOR),
    )
    for path, status, msgid in cases:
        for lang, headers, query in (
            ("fr", {}, ""),
            ("en", {"accept-language": "en-GB,en;q=0.9"}, ""),
            ("en", {}, ("&" if "?" in path else "?") + "lang=en"),
            ("ar", {"accept-language": "ar"}, ""),
        ):
            response = await client.get(path + query, headers=headers)
            client.cookies.clear()  # ?lang= is remembered in a cookie: not for the next case
            assert response.status_code == status, (path, lang)
            assert response.headers["content-type"].startswith("application/json")
            assert response.headers["content-language"] == lang
            body = response.json()
            assert body["status_code"] == status
            if msgid == opendata.LIMIT_RANGE:
                assert body["detail"] == gettext(msgid, lang, max=feed.MAX_LIMIT)
            elif msgid is not None:
                assert body["detail"] == gettext(msgid, lang), (path, lang)
            else:
                assert body["detail"] == gettext(opendata.BAD_PARAMETER, lang, name="page")
    # Not the same words in French and in English (where the catalog has them already).
    fr = (await client.get("/api/v1/tables/nowhere/proposals")).json()["detail"]
    en = (await client.get("/api/v1/tables/nowhere/proposals?lang=en")).json()["detail"]
    assert fr != en
    assert en == "This page does not exist, or no longer exists."
    # A method the API does not answer.
    refused = await client.post("/api/v1/tables", headers={"accept-language": "en"})
    assert refused.status_code == 405
    assert refused.json() == {"status_code": 405, "detail": "This action is not possible here."}
