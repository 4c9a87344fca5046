"""Open data over HTTP: the `/data` page for researchers and journalists, and the downloads.

Each dataset of exports.open_data, in each of its formats, for the whole site, one
organisation or one table, at `/data/{dataset}.{format}`,
`/organisations/{slug}/data/{dataset}.{format}` and `/tables/{slug}/data/{dataset}.{format}`
("proposals.csv", "votes.jsonl", "proposals.geojson", "meetings.csv-semicolon"). A download
is streamed as exports.open_data encodes it (no Content-Length, nothing held in memory) and
names the licence its organisation chose (a `Link: <…>; rel="license"` header); the whole
site's names one when every organisation chose the same.

The licence is chosen by the organisation's coordinators (tables.settings_controllers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Stream, Template

from exports import open_data
from tables import services as tables
from tables.models import LICENCES, Organisation
from voix.i18n import N_
from voix.permissions import Principal
from voix.web import Slug, page
from voix.workers import Busy

# One path segment, "proposals.csv": whatever it holds, what is not offered is a 404 (_parse).
DataFile = FromPath[str]

# Exports change with the tables' activity; a few minutes old is fine for open data, and the
# same download asked again meanwhile is served by a cache, not read again from the database.
CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class Licence:
    key: str
    name: str  # the licence's own name, not translated (it is how it is cited)
    url: str
    summary: str  # an N_() msgid


LICENCE_DETAILS = {
    licence.key: licence
    for licence in (
        Licence(
            "etalab-2.0",
            "Licence Ouverte 2.0 / Etalab",
            "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
            N_("Anyone may reuse the data, even commercially, as long as they cite the source."),
        ),
        Licence(
            "odbl-1.0",
            "Open Database License (ODbL) 1.0",
            "https://opendatacommons.org/licenses/odbl/1-0/",
            N_(
                "Anyone may reuse the data, citing the source; a database made from it must be "
                "shared under the same licence."
            ),
        ),
        Licence(
            "cc-by-4.0",
            "Creative Commons Attribution 4.0 (CC BY 4.0)",
            "https://creativecommons.org/licenses/by/4.0/",
            N_("Anyone may reuse the data, even commercially, as long as they cite the source."),
        ),
    )
}


def licence(key: str) -> Licence:
    """The licence of a key, the default for a key no longer offered."""
    return LICENCE_DETAILS.get(key) or LICENCE_DETAILS[LICENCES[0]]


DATASET_LABELS = {
    "proposals": N_("Proposals"),
    "votes": N_("Votes"),
    "meetings": N_("Meetings"),
    "briefs": N_("Position documents sent, and the institutions' answers"),
}
DATASET_SUMMARIES = {
    "proposals": N_(
        "Every proposal the tables' lists show (hidden and merged ones left out): its theme, "
        "status and dates, its text in the language it was written in and its translations, "
        "supports, comments, the last vote on it, and its place when it has one."
    ),
    "votes": N_(
        "Every vote: the question, the method, what was voted on, how many took part by each "
        "channel, and once it is closed the results and the fingerprint of its public ballot "
        "box, to recount it."
    ),
    "meetings": N_(
        "Every meeting of the tables: date, place, how many people came (counts, never names), "
        "and the minutes when they are published."
    ),
    "briefs": N_(
        "One row per position document and institution it was sent to: when, the day an answer "
        "was due, and what the institution answered and committed to."
    ),
}
FORMAT_LABELS = {
    "csv": N_("CSV"),
    "csv-semicolon": N_("CSV with semicolons"),
    "jsonl": N_("JSON Lines"),
    "geojson": N_("GeoJSON"),
}
FORMAT_SUMMARIES = {
    "csv": N_("For spreadsheets (LibreOffice, Excel in English): UTF-8, comma-separated."),
    "csv-semicolon": N_("For a spreadsheet set up in French: UTF-8, semicolon-separated."),
    "jsonl": N_("For programs: one JSON object per line."),
    "geojson": N_("For maps (QGIS, uMap): the proposals that have a place, as points."),
}


def formats_of(dataset: str) -> tuple[str, ...]:
    return tuple(fmt for fmt in open_data.FORMATS if fmt != "geojson" or dataset == "proposals")


def _parse(file: str) -> tuple[str, str]:
    """("proposals", "csv") from "proposals.csv"; 404 for anything not offered."""
    dataset, dot, fmt = file.partition(".")
    if not dot or dataset not in open_data.DATASETS or fmt not in formats_of(dataset):
        raise NotFoundException()
    return dataset, fmt


# Downloads running at once in this process: each holds a batch of rows while its client reads
# (a stalled client holds it longest). Past this, a 503 asks to come back shortly.
MAX_DOWNLOADS = 16
_downloads = 0


async def _counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Counted from its first chunk to its end, however it ends (a client gone included)."""
    global _downloads  # noqa: PLW0603 — this process's count
    _downloads += 1
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        _downloads -= 1


def _download(
    file: str, scope: open_data.Scope, scope_slug: str, licences: Iterable[Licence]
) -> Stream:
    dataset, fmt = _parse(file)
    if _downloads >= MAX_DOWNLOADS:
        raise Busy
    chosen = {item.key: item for item in licences}
    # One licence for all the rows, or the page says which organisation's applies to which.
    named = next(iter(chosen.values())) if len(chosen) == 1 else None
    headers = {
        "Content-Disposition": (
            f'attachment; filename="{open_data.filename(dataset, fmt, scope_slug)}"'
        ),
        "Cache-Control": CACHE_CONTROL,
    }
    if named is not None:
        headers["Link"] = f'<{named.url}>; rel="license"'
    # Litestar adds "; charset=utf-8" to a text/ type itself: given it too, it says it twice.
    kind = open_data.media_type(fmt)
    return Stream(
        _counted(open_data.stream(dataset, fmt, scope, licence=named.url if named else "")),
        media_type=kind.split(";")[0] if kind.startswith("text/") else kind,
        headers=headers,
    )


async def _organisations() -> list[dict[str, Any]]:
    return await Organisation.select(
        Organisation.id, Organisation.slug, Organisation.name, Organisation.licence
    ).order_by(Organisation.name)


@get("/data/{file:str}", name="data_site")
async def site_download(file: DataFile) -> Stream:
    """The whole site's rows."""
    _parse(file)  # 404 before any query
    organisations = await _organisations()
    return _download(
        file, open_data.Scope(), "", (licence(row["licence"]) for row in organisations)
    )


@get("/organisations/{slug:str}/data/{file:str}", name="data_organisation")
async def organisation_download(slug: Slug, file: DataFile) -> Stream:
    """The rows of every table the organisation runs."""
    _parse(file)
    organisation = await tables.get_organisation(slug)
    return _download(
        file,
        open_data.Scope(organisation_id=organisation["id"]),
        slug,
        [licence(organisation["licence"])],
    )


@get("/tables/{slug:str}/data/{file:str}", name="data_table")
async def table_download(slug: Slug, file: DataFile) -> Stream:
    """One table's rows, under its organisation's licence."""
    _parse(file)
    table = await tables.get_table(slug)
    organisation = await (
        Organisation.select(Organisation.licence)
        .where(Organisation.id == table["organisation"])
        .first()
    )
    return _download(
        file,
        open_data.Scope(table_id=table["id"]),
        slug,
        [licence(organisation["licence"] if organisation else "")],
    )


@get("/data", name="data")
async def data_page(request: Request, principal: NamedDependency[Principal]) -> Template:
    """What is published, under which licence, every column explained, and where the API is."""
    organisations = await _organisations()
    listed = await tables.list_tables()
    for organisation in organisations:
        organisation["licence_details"] = licence(organisation["licence"])
        organisation["tables"] = [t for t in listed if t["organisation"] == organisation["id"]]
    return page(
        request,
        "data/index.html",
        organisations=organisations,
        licences=list(LICENCE_DETAILS.values()),
        datasets=[
            {
                "name": dataset,
                "label": DATASET_LABELS[dataset],
                "summary": DATASET_SUMMARIES[dataset],
                "formats": formats_of(dataset),
                "columns": open_data.columns(dataset),
            }
            for dataset in open_data.DATASETS
        ],
        format_labels=FORMAT_LABELS,
        format_summaries=FORMAT_SUMMARIES,
        example_table=listed[0]["slug"] if listed else "flamants-iris",
    )


ROUTES: list = [data_page, site_download, organisation_download, table_download]
