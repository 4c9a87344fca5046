"""The open-data page (/data), the downloads for the whole site, an organisation and a table,
and the licence an organisation's coordinators choose for them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import zlib
from datetime import UTC, datetime
from typing import Any

import brotli
import pytest
from httpx import AsyncClient

from audit.models import AuditEntry
from exports import open_data
from exports.data_controllers import (
    DATASET_LABELS,
    FORMAT_LABELS,
    LICENCE_DETAILS,
    formats_of,
)
from proposals.models import MERGED, Proposal
from tables.models import LICENCES, Organisation
from voix.app import ERROR_MESSAGES
from voix.forms import REQUIRED, UNKNOWN_CHOICE
from voix.i18n import catalog

from .factories import add_proposal, build_world, post_form, sign_in, t

ETALAB = LICENCE_DETAILS["etalab-2.0"]
ODBL = LICENCE_DETAILS["odbl-1.0"]
NOT_FOUND = ERROR_MESSAGES[404]
NOT_ALLOWED = ERROR_MESSAGES[403]


def raw(msgid: str, lang: str = "fr") -> str:
    """A message as a template's _() writes it: translations are markup, not escaped again."""
    return catalog(lang).gettext(msgid)


def scopes(world: Any) -> list[tuple[str, str, open_data.Scope]]:
    """(URL prefix, the slug in the file name, the export's scope) for each kind of scope."""
    organisation = world.table_a["organisation_slug"]
    return [
        ("/data", "", open_data.Scope()),
        (
            f"/organisations/{organisation}/data",
            organisation,
            open_data.Scope(organisation_id=world.table_a["organisation"]),
        ),
        (
            f"/tables/{world.table_a['slug']}/data",
            world.table_a["slug"],
            open_data.Scope(table_id=world.table_a["id"]),
        ),
    ]


async def set_licence(organisation_id: int, key: str) -> None:
    await Organisation.update({Organisation.licence: key}).where(Organisation.id == organisation_id)


async def licence_of(organisation_id: int) -> str:
    row = (
        await Organisation.select(Organisation.licence)
        .where(Organisation.id == organisation_id)
        .first()
    )
    assert row is not None
    return str(row["licence"])


def test_every_dataset_format_and_licence_has_its_words() -> None:
    assert set(DATASET_LABELS) == set(open_data.DATASETS)
    assert set(FORMAT_LABELS) == set(open_data.FORMATS)
    assert tuple(LICENCE_DETAILS) == LICENCES
    assert LICENCES[0] == "etalab-2.0"  # the default, and the column's default
    assert Organisation.licence.default == "etalab-2.0"
    assert formats_of("proposals") == open_data.FORMATS
    assert "geojson" not in formats_of("votes")


# The page


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
async def test_the_data_page_explains_every_dataset_column_and_licence(
    client: AsyncClient, lang: str
) -> None:
    world = await build_world()
    await set_licence(world.table_b["organisation"], "odbl-1.0")
    shown = await client.get(f"/data?lang={lang}")
    assert shown.status_code == 200
    page = shown.text
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in page
    assert f"<h1>{raw('Open data', lang)}</h1>" in page
    for dataset in open_data.DATASETS:
        assert f'id="dataset-{dataset}"' in page
        assert raw(DATASET_LABELS[dataset], lang) in page
        for column in open_data.columns(dataset):
            # A long name may break after its underscores on a phone.
            named = f'<th scope="row"><code dir="ltr">{column.name}</code></th>'
            assert named in page.replace("<wbr>", "")
            assert f"<td>{raw(column.description, lang)}</td>" in page, column.name
    # Downloads: every scope, every dataset in each of its formats, GeoJSON for proposals only.
    prefixes = [
        "/data",
        f"/organisations/{world.table_a['organisation_slug']}/data",
        f"/organisations/{world.table_b['organisation_slug']}/data",
        f"/tables/{world.table_a['slug']}/data",
        f"/tables/{world.table_b['slug']}/data",
    ]
    for prefix in prefixes:
        for dataset in open_data.DATASETS:
            for fmt in open_data.FORMATS:
                link = f'href="{prefix}/{dataset}.{fmt}"'
                assert (link in page) == (fmt in formats_of(dataset)), link
    assert raw(FORMAT_LABELS["csv-semicolon"], lang) in page
    # Each organisation's licence, named and linked.
    assert page.count(f'href="{ETALAB.url}"') == 1
    assert page.count(f'href="{ODBL.url}"') == 1
    assert ODBL.name in page
    assert raw(ODBL.summary, lang) in page
    # The API and its description, with an example of reading it page by page.
    assert 'href="/schema/openapi.json"' in page
    assert 'href="/api/v1/tables"' in page
    assert "proposals?limit=50" in page
    assert '"next": null' in page
    # Nobody here manages anything: no way to the settings.
    assert "/settings" not in page


async def test_the_footer_leads_to_the_data_page(client: AsyncClient) -> None:
    await build_world()
    home = await client.get("/")
    assert f'<a href="/data">{raw("Open data: downloads and API")}</a>' in home.text


async def test_a_coordinator_is_shown_the_way_to_their_organisations_licence(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    page = (await client.get("/data")).text
    assert f'href="/organisations/{world.table_a["organisation_slug"]}/settings"' in page
    assert f'href="/organisations/{world.table_b["organisation_slug"]}/settings"' not in page


# Downloads


async def test_every_download_streams_with_its_headers(client: AsyncClient) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "École Saint-Exupéry", body="مدرسة", longitude=5.41,
                       latitude=43.33)  # fmt: skip
    await add_proposal(world.table_b, "Un banc aux Aygalades")
    for prefix, slug, _scope in scopes(world):
        for dataset in open_data.DATASETS:
            for fmt in formats_of(dataset):
                url = f"{prefix}/{dataset}.{fmt}"
                got = await client.get(url, headers={"accept-encoding": "identity"})
                assert got.status_code == 200, url
                headers = got.headers
                assert (
                    headers["content-type"].split(";")[0]
                    == (open_data.media_type(fmt).split(";")[0])
                )
                if fmt.startswith("csv"):
                    assert headers["content-type"] == "text/csv; charset=utf-8"
                name = open_data.filename(dataset, fmt, slug)
                assert headers["content-disposition"] == f'attachment; filename="{name}"'
                assert "content-length" not in headers  # streamed
                assert headers["cache-control"] == "public, max-age=300"
                # Both organisations publish under the default licence.
                assert headers["link"] == f'<{ETALAB.url}>; rel="license"'
                body = got.content
                if fmt.startswith("csv"):
                    assert body.startswith(b"\xef\xbb\xbf")
                    delimiter = ";" if fmt == "csv-semicolon" else ","
                    read = list(
                        csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=delimiter)
                    )
                    assert read[0] == [column.name for column in open_data.columns(dataset)]
                elif fmt == "jsonl":
                    for line in body.decode().splitlines():
                        assert set(json.loads(line)) == {c.name for c in open_data.columns(dataset)}
                else:
                    collection = json.loads(body)
                    assert collection["type"] == "FeatureCollection"
                    assert collection["licence"] == ETALAB.url
                    assert [f["geometry"]["coordinates"] for f in collection["features"]] == [
                        [5.41, 43.33]
                    ]
    site = (await client.get("/data/proposals.csv")).content.decode("utf-8-sig")
    assert "École Saint-Exupéry" in site
    assert "مدرسة" in site
    assert "Un banc aux Aygalades" in site
    table = (await client.get("/tables/flamants-iris/data/proposals.csv")).content.decode()
    assert "École Saint-Exupéry" in table
    assert "Un banc aux Aygalades" not in table
    organisation = (
        await client.get(
            f"/organisations/{world.table_b['organisation_slug']}/data/proposals.jsonl"
        )
    ).text
    assert "Un banc aux Aygalades" in organisation
    assert "Saint-Exupéry" not in organisation


async def test_each_download_names_its_own_organisations_licence(client: AsyncClient) -> None:
    world = await build_world()
    await set_licence(world.table_b["organisation"], "odbl-1.0")
    table_b = await client.get(f"/tables/{world.table_b['slug']}/data/votes.csv")
    assert table_b.headers["link"] == f'<{ODBL.url}>; rel="license"'
    organisation_b = await client.get(
        f"/organisations/{world.table_b['organisation_slug']}/data/proposals.geojson"
    )
    assert organisation_b.headers["link"] == f'<{ODBL.url}>; rel="license"'
    assert organisation_b.json()["licence"] == ODBL.url
    table_a = await client.get(f"/tables/{world.table_a['slug']}/data/votes.csv")
    assert table_a.headers["link"] == f'<{ETALAB.url}>; rel="license"'
    # The whole site mixes two licences: no one licence is named for it.
    site = await client.get("/data/proposals.geojson")
    assert site.status_code == 200
    assert "link" not in site.headers
    assert "licence" not in site.json()


async def test_head_answers_the_headers_of_a_download_without_its_body(
    client: AsyncClient,
) -> None:
    world = await build_world()
    await add_proposal(world.table_a)
    asked = await client.head("/tables/flamants-iris/data/proposals.csv")
    assert asked.status_code == 200
    assert asked.content == b""
    assert asked.headers["content-disposition"].startswith("attachment;")
    assert asked.headers["content-type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize(
    "url",
    [
        "/data/proposals.xlsx",
        "/data/votes.geojson",
        "/data/meetings.geojson",
        "/data/briefs.geojson",
        "/data/people.csv",
        "/data/proposals",
        "/data/proposals.",
        "/data/.csv",
        "/data/proposals.csv.csv",
        "/data/PROPOSALS.CSV",
        "/data/" + "proposals" * 10 + ".csv",
        "/tables/nowhere/data/proposals.csv",
        "/tables/flamants-iris/data/votes.geojson",
        "/organisations/nowhere/data/votes.csv",
        "/organisations/avec-nous/data/proposals.pdf",
    ],
)
async def test_what_is_not_offered_is_a_translated_404(client: AsyncClient, url: str) -> None:
    await build_world()
    refused = await client.get(url, headers={"accept-language": "ar"})
    assert refused.status_code == 404
    assert t(NOT_FOUND, "ar") in refused.text
    assert "content-disposition" not in refused.headers


async def test_a_download_flows_chunk_by_chunk_compressed_or_not(app: Any) -> None:
    """The compression of the edge (voix.middleware) compresses each chunk as it comes and
    flushes it: the download leaves in several messages, not held until the end."""
    world = await build_world()
    long_text = "Des bancs à l'ombre devant l'école, et de l'eau pour tous. مدرسة " * 30
    await Proposal.insert(
        *[
            Proposal(
                table=world.table_a["id"],
                title=f"Proposition {n}",
                body=long_text,
                theme="housing",
                language="fr",
            )
            for n in range(150)
        ]
    )

    async def download(encoding: str) -> tuple[list[bytes], dict[bytes, bytes]]:
        messages: list[dict[str, Any]] = []
        asked = False
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # the client stays until the end, as a server tells it then
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/tables/flamants-iris/data/proposals.csv",
            "raw_path": b"/tables/flamants-iris/data/proposals.csv",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver.local"), (b"accept-encoding", encoding.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver.local", 80),
            "state": {},
        }
        await app(scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        assert start["status"] == 200
        bodies = [m for m in messages if m["type"] == "http.response.body"]
        assert all(m.get("more_body") for m in bodies[:-1])
        assert not bodies[-1].get("more_body")
        return [m.get("body", b"") for m in bodies], dict(start["headers"])

    plain, headers = await download("identity")
    assert b"content-encoding" not in headers
    whole = b"".join(plain)
    assert len(whole) > 3 * open_data.CHUNK_BYTES
    assert len([chunk for chunk in plain if chunk]) >= 3  # several chunks, not one
    assert whole.decode("utf-8-sig").count("Proposition ") == 150

    squeezed, headers = await download("br")
    assert headers[b"content-encoding"] == b"br"
    assert len([chunk for chunk in squeezed if chunk]) >= 3
    # Each chunk flushed: what came so far decompresses to a prefix of the file.
    unpacker = brotli.Decompressor()
    first = unpacker.process(squeezed[0] + squeezed[1])
    assert first
    assert whole.startswith(first)
    assert brotli.decompress(b"".join(squeezed)) == whole

    gzipped, headers = await download("gzip")
    assert headers[b"content-encoding"] == b"gzip"
    assert len([chunk for chunk in gzipped if chunk]) >= 3
    assert zlib.decompress(b"".join(gzipped), 16 + zlib.MAX_WBITS) == whole


async def test_the_exported_proposals_are_those_the_table_page_lists(
    client: AsyncClient,
) -> None:
    world = await build_world()
    shown = [await add_proposal(world.table_a, f"Idée {n}") for n in range(5)]
    hidden = await add_proposal(world.table_a, "HIDDEN-SENTINEL")
    await Proposal.update({Proposal.hidden_at: datetime.now(UTC)}).where(Proposal.id == hidden)
    merged = await add_proposal(world.table_a, "Un doublon", status=MERGED, merged_into=shown[0])
    await add_proposal(world.table_b, "Ailleurs")
    listed = {
        int(found)
        for found in re.findall(
            r'href="/proposals/(\d+)"', (await client.get("/tables/flamants-iris")).text
        )
    }
    assert listed == set(shown)
    for prefix in (
        "/tables/flamants-iris/data",
        f"/organisations/{world.table_a['organisation_slug']}/data",
    ):
        text = (await client.get(f"{prefix}/proposals.csv")).content.decode("utf-8-sig")
        exported = [int(row["id"]) for row in csv.DictReader(io.StringIO(text))]
        assert sorted(exported) == sorted(listed)
        assert hidden not in exported
        assert merged not in exported
        assert "HIDDEN-SENTINEL" not in text
        lines = (await client.get(f"{prefix}/proposals.jsonl")).text.splitlines()
        assert sorted(json.loads(line)["id"] for line in lines) == sorted(listed)


# The licence


def settings_url(world: Any) -> str:
    return f"/organisations/{world.table_a['organisation_slug']}/settings"


async def test_a_coordinator_changes_the_licence_and_the_downloads_follow(
    client: AsyncClient,
) -> None:
    world = await build_world()
    organisation = world.table_a["organisation"]
    await sign_in(client, world.users["coordinator_a"])
    form = await client.get(settings_url(world))
    assert form.status_code == 200
    assert 'name="_csrf_token"' in form.text
    assert 'value="etalab-2.0" checked' in form.text
    saved = await post_form(client, settings_url(world), {"licence": "odbl-1.0"})
    assert saved.status_code == 303
    assert saved.headers["location"] == settings_url(world) + "?saved=licence"
    assert await licence_of(organisation) == "odbl-1.0"
    assert await licence_of(world.table_b["organisation"]) == "etalab-2.0"
    after = await client.get(saved.headers["location"])
    saved_note = "The licence is saved: the downloads and the open data page name it from now on."
    assert raw(saved_note) in after.text
    assert 'value="odbl-1.0" checked' in after.text
    entries = (
        await AuditEntry.select()
        .where(AuditEntry.action == "organisation.licence")
        .output(load_json=True)
    )
    assert len(entries) == 1
    assert entries[0]["organisation_id"] == organisation
    assert entries[0]["actor"] == world.users["coordinator_a"]
    assert entries[0]["details"] == {"licence": "odbl-1.0", "was": "etalab-2.0"}
    download = await client.get(f"/tables/{world.table_a['slug']}/data/proposals.csv")
    assert download.headers["link"] == f'<{ODBL.url}>; rel="license"'
    page = (await client.get("/data")).text
    section = page[page.index(f'id="licence-{world.table_a["organisation_slug"]}"') :]
    assert section.index(ODBL.url) < section.index("</div>")
    # The same choice again changes nothing and writes nothing in the journal.
    await post_form(client, settings_url(world), {"licence": "odbl-1.0"})
    assert await AuditEntry.count().where(AuditEntry.action == "organisation.licence") == 1


@pytest.mark.parametrize(
    "person", ["facilitator_a", "resident_a", "coordinator_b", "facilitator_b", "outsider"]
)
async def test_only_the_organisations_coordinators_may_change_its_licence(
    client: AsyncClient, person: str
) -> None:
    world = await build_world()
    await sign_in(client, world.users[person])
    assert (await client.get(settings_url(world))).status_code == 403
    refused = await post_form(client, settings_url(world), {"licence": "cc-by-4.0"})
    assert refused.status_code == 403
    assert t(NOT_ALLOWED) in refused.text
    assert await licence_of(world.table_a["organisation"]) == "etalab-2.0"
    assert await AuditEntry.count() == 0


async def test_the_licence_form_asks_to_sign_in_and_to_confirm_first(
    client: AsyncClient,
) -> None:
    world = await build_world()
    anonymous = await client.get(settings_url(world))
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/login?")
    assert (
        await post_form(client, settings_url(world), {"licence": "cc-by-4.0"})
    ).status_code == 401
    await sign_in(client, world.users["coordinator_a"], verified=False)
    unverified = await client.get(settings_url(world))
    assert unverified.status_code in (302, 303)
    assert unverified.headers["location"].startswith(("/login/verify?", "/account?"))  # set up TOTP
    assert (
        await post_form(client, settings_url(world), {"licence": "cc-by-4.0"})
    ).status_code == 401
    assert await licence_of(world.table_a["organisation"]) == "etalab-2.0"


async def test_the_licence_form_without_its_csrf_token_is_refused(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    await client.get(settings_url(world))  # the CSRF cookie, as a browser has it
    refused = await client.post(settings_url(world), data={"licence": "cc-by-4.0"})
    assert refused.status_code == 403
    assert await licence_of(world.table_a["organisation"]) == "etalab-2.0"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gpl-3.0", UNKNOWN_CHOICE),
        ("", REQUIRED),
        ("etalab-2.0 ", None),
        ("ODBL-1.0", UNKNOWN_CHOICE),
    ],
)
async def test_a_licence_not_offered_is_refused_translated_and_changes_nothing(
    client: AsyncClient, value: str, message: str | None
) -> None:
    world = await build_world()
    await sign_in(client, world.users["coordinator_a"])
    sent = await post_form(client, f"{settings_url(world)}?lang=ar", {"licence": value})
    if message is None:  # surrounding spaces are forgiven: the same licence, nothing changes
        assert sent.status_code == 303
        assert await AuditEntry.count() == 0
        return
    assert sent.status_code == 400
    assert t(message, "ar") in sent.text
    assert 'aria-describedby="f-licence-error"' in sent.text
    assert await licence_of(world.table_a["organisation"]) == "etalab-2.0"
    assert await AuditEntry.count() == 0
