"""Render a published brief of 40 and of 200 proposals, in French and Arabic, and time it.

    .venv/bin/python bench/pdf_brief.py [--sizes 40 200] [--out DIR]

Builds, in a temporary SQLite database, a table whose proposals are placed on its district's
map, each with a photo (a JPEG drawn with Pillow, its publication consented), graded in
closed majority-judgment votes of up to 40 proposals (cast and closed through the real
services), then adopted and gathered into a brief (addressees, signatories) frozen as
version 1 by exports.snapshot.build, its photos shrunk to their printed size as publishing
a version keeps them (exports.photos, in exports.services.publish_version). Setup is not timed.

Timed: exports.pdf.render_brief (variant "ua") of the localised document, in a fresh process
of its own per size and language, as a worker of the pool renders it: once cold (fonts and
templates loading), then warm; the warm figure is the one the targets are about (40 proposals
under 3 s, 200 under 10 s). Memory: that process's peak resident set size, ru_maxrss of
resource.getrusage(RUSAGE_SELF) read in it (so the rendering's C allocations, Pango's and
HarfBuzz's, count too, which tracemalloc would not see), minus nothing: it includes the
interpreter and WeasyPrint loaded (about the figure printed for "0 proposals" = the process
before rendering). `--out DIR` keeps the PDFs to look at.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

BENCH_KEY = "bench-pdf-brief-secret-key-0123456789abcdef"
CENTRE = (43.3369, 5.4105)  # the Flamants-Iris
THEMES = ("housing", "public_space", "cleanliness", "transport", "school", "youth")
VOTERS = 15
PER_VOTE = 40  # votes.services.MAX_OPTIONS
TARGETS = {40: 3.0, 200: 10.0}

TITLES_FR = (
    "Réparer les ascenseurs de la tour {n}",
    "Un éclairage pour le parking du bâtiment {n}",
    "Des bancs à l'ombre devant l'école, allée {n}",
    "Un bus toutes les dix minutes aux heures de pointe, ligne {n}",
    "Nettoyer les caves et les halls du bloc {n}",
)
TITLES_AR = (
    "حاويات نفايات إضافية قرب السوق رقم {n}",
    "ملعب للأطفال قرب العمارة {n}",
)
BODY_FR = (
    "Depuis des mois, les habitants signalent le problème sans réponse. Nous demandons une "
    "intervention rapide, un calendrier écrit et un point d'étape avec la table de quartier. "
    "Les personnes âgées et les familles avec poussettes sont les premières touchées."
)
BODY_AR = (
    "منذ أشهر يشتكي السكان من هذه المشكلة دون أي رد. نطلب تدخلاً سريعاً وجدولاً زمنياً مكتوباً "
    "ولقاءً لمتابعة التقدم مع طاولة الحي."
)


def photo(n: int) -> bytes:
    """A 1600×1200 JPEG with a phone photo's grain, as proposals.media.clean_photo stores one
    (PHOTO_SIDE, quality 82): some 300 KB."""
    from PIL import Image, ImageDraw  # noqa: PLC0415 — loaded in the setup only

    rng = random.Random(n)  # noqa: S311 — pictures, not secrets
    size = (1600, 1200)
    image = Image.new("RGB", size, (rng.randrange(90, 200), 150, rng.randrange(90, 220)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + rng.randrange(50, 500), y + rng.randrange(50, 400)), fill=colour)
    grain = Image.effect_noise(size, 24).convert("RGB")
    image = Image.blend(image, grain, 0.12)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82)
    return out.getvalue()


def square(latitude: float, longitude: float, half: float = 0.004) -> dict[str, Any]:
    ring = [
        [longitude - half, latitude - half * 0.75],
        [longitude + half, latitude - half * 0.75],
        [longitude + half, latitude + half * 0.75],
        [longitude - half, latitude + half * 0.75],
        [longitude - half, latitude - half * 0.75],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


async def build_brief(size: int, slug: str) -> tuple[dict[str, Any], dict[int, tuple[str, bytes]]]:
    """A table with `size` adopted, placed, photographed, voted proposals, and its brief's
    version 1 (exports.snapshot "voix-brief/1"); returns it with the photos it prints, as the
    version keeps them."""
    from accounts.services import create_user  # noqa: PLC0415 — after the environment
    from exports import snapshot  # noqa: PLC0415
    from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory  # noqa: PLC0415
    from exports.photos import printed_photos  # noqa: PLC0415
    from maps.models import District  # noqa: PLC0415
    from proposals.models import ADOPTED, DISCUSSION, Media, Proposal  # noqa: PLC0415
    from tables.models import (  # noqa: PLC0415
        FACILITATOR,
        RESIDENT,
        Institution,
        Membership,
        Organisation,
        Table,
        TableDistrict,
    )
    from tables.services import get_table_by_id  # noqa: PLC0415
    from voix.permissions import Principal  # noqa: PLC0415
    from votes import closing  # noqa: PLC0415
    from votes import services as votes  # noqa: PLC0415

    now = datetime.now(UTC)
    organisation = (
        await Organisation.insert(Organisation(slug=f"avec-nous-{slug}", name="Avec Nous"))
    )[0]["id"]
    table_id = (
        await Table.insert(
            Table(slug=slug, name="Les Flamants-Iris", postcode="13014", organisation=organisation)
        )
    )[0]["id"]
    district = (
        await District.insert(
            District(
                slug=slug,
                name="Les Flamants",
                postcode="13014",
                boundary=square(*CENTRE),
                approximate=True,
            )
        )
    )[0]["id"]
    await TableDistrict.insert(TableDistrict(table=table_id, district=district))
    table = await get_table_by_id(table_id)
    facilitator = await create_user(f"{slug}-facilitator", "Nadia", "")
    await Membership.insert(Membership(user=facilitator.id, table=table_id, role=FACILITATOR))
    manager = Principal(user_id=facilitator.id, table_roles={table_id: FACILITATOR}, verified=True)
    voters = []
    for v in range(VOTERS):
        user = await create_user(f"{slug}-resident-{v}", f"Habitant {v}", "")
        await Membership.insert(Membership(user=user.id, table=table_id, role=RESIDENT))
        voters.append(Principal(user_id=user.id, table_roles={table_id: RESIDENT}))
    rng = random.Random(size)  # noqa: S311 — test data
    proposals, media = [], {}
    for n in range(size):
        arabic = n % 5 == 4
        titles = TITLES_AR if arabic else TITLES_FR
        proposal = (
            await Proposal.insert(
                Proposal(
                    table=table_id,
                    title=titles[n % len(titles)].format(n=n + 1),
                    body=BODY_AR if arabic else BODY_FR,
                    theme=THEMES[n % len(THEMES)],
                    language="ar" if arabic else "fr",
                    status=DISCUSSION,
                    supports=rng.randrange(0, 40),
                    latitude=CENTRE[0] + rng.uniform(-0.0025, 0.0025),
                    longitude=CENTRE[1] + rng.uniform(-0.0035, 0.0035),
                    district=district,
                )
            )
        )[0]["id"]
        data = photo(n)
        media[proposal] = (
            await Media.insert(
                Media(
                    proposal=proposal,
                    kind="photo",
                    token=f"{slug}-{n}",
                    content_type="image/jpeg",
                    data=data,
                    size=len(data),
                    publication_consent_at=now,
                )
            )
        )[0]["id"]
        proposals.append(proposal)
    for start in range(0, size, PER_VOTE):
        chunk = proposals[start : start + PER_VOTE]
        vote_id = await votes.open_vote(
            manager,
            table,
            chunk,
            {
                "question": f"Quelles priorités, série {start // PER_VOTE + 1} ?",
                "method": "majority_judgment",
            },
        )
        options = (await votes.options([vote_id]))[vote_id]
        for voter in voters:
            sheet = {f"grade-{o['id']}": str(rng.randrange(0, 5)) for o in options}
            await votes.cast(voter, table, vote_id, sheet)
        await closing.close_vote(manager, table, vote_id)
    await Proposal.update({Proposal.status: ADOPTED}).where(Proposal.id.is_in(proposals))
    brief_id = (
        await Brief.insert(
            Brief(
                slug=slug,
                table=table_id,
                title="Rénovation urbaine des Flamants-Iris : les priorités des habitant·e·s",
                addressed_to="",
                introduction=(
                    "La table de quartier des Flamants-Iris réunit chaque mois les habitant·e·s "
                    "avec l'appui de l'association **Avec Nous**.\n\nNous demandons une réponse "
                    "écrite, proposition par proposition."
                ),
                language="fr",
                created_by=facilitator.id,
                published_at=now,
                created_at=now - timedelta(days=2),
                updated_at=now,
            )
        )
    )[0]["id"]
    await BriefItem.insert(
        *[
            BriefItem(brief=brief_id, proposal=p, position=i, photo=media[p])
            for i, p in enumerate(proposals, start=1)
        ]
    )
    for position, (name, service, address) in enumerate(
        (
            ("13 Habitat", "Agence Nord", "80 rue Albe\n13004 Marseille"),
            (
                "Métropole Aix-Marseille-Provence",
                "Direction de la politique de la ville",
                "58 boulevard Charles Livon\n13007 Marseille",
            ),
        ),
        start=1,
    ):
        institution = (
            await Institution.insert(
                Institution(organisation=organisation, name=name, service=service, address=address)
            )
        )[0]["id"]
        await BriefAddressee.insert(
            BriefAddressee(brief=brief_id, institution=institution, position=position)
        )
    await BriefSignatory.insert(
        BriefSignatory(brief=brief_id, position=1, name="Avec Nous", capacity="L'association"),
        BriefSignatory(
            brief=brief_id, position=2, name="Fatima", capacity="Habitante des Flamants-Iris",
            user=voters[0].user_id, consent_recorded_by=facilitator.id, consent_at=now,
        ),
    )  # fmt: skip
    document = await snapshot.build(brief_id, version=1, now=now)
    rows = await Media.select(Media.id, Media.content_type, Media.data).where(
        Media.id.is_in(list(media.values()))
    )
    return document, printed_photos(
        {row["id"]: (row["content_type"], bytes(row["data"])) for row in rows}
    )


def render_in_child(
    document: dict[str, Any], lang: str, photos: dict[int, tuple[str, bytes]]
) -> tuple[float, float, float, float, int, bytes]:
    """In a fresh process: (cold seconds, warm seconds, warm CPU seconds, peak RSS MiB, pages,
    the PDF). CPU time too: on a shared machine the wall clock counts the neighbours' work."""
    from pypdf import PdfReader  # noqa: PLC0415

    from exports import snapshot  # noqa: PLC0415
    from exports.pdf import render_brief  # noqa: PLC0415

    doc = snapshot.localised(document, lang)
    start = time.perf_counter()
    render_brief(doc, lang, variant="ua", photos=photos)
    cold = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    content = render_brief(doc, lang, variant="ua", photos=photos)
    warm, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return cold, warm, cpu, peak, len(PdfReader(io.BytesIO(content)).pages), content


def baseline() -> float:
    """The peak RSS of a fresh process with WeasyPrint and the project loaded, nothing rendered."""
    import exports.pdf  # noqa: F401, PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def keep(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


async def main(sizes: list[int], out: Path | None) -> None:
    from voix import db, workers  # noqa: PLC0415

    await db.migrate()
    await db.engine().start()
    try:
        built = {size: await build_brief(size, f"bench-{size}") for size in sizes}
    finally:
        workers.shutdown()
        await db.engine().stop()
    spawn = get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        print(f"a fresh process, project loaded: peak RSS {pool.submit(baseline).result():.0f} MiB")
    for size, (document, photos) in built.items():
        for lang in ("fr", "ar"):
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                cold, warm, cpu, peak, pages, content = pool.submit(
                    render_in_child, document, lang, photos
                ).result()
            target = TARGETS.get(size)
            verdict = (
                "" if target is None else (" ok" if warm < target else f" OVER {target:.0f} s")
            )
            print(
                f"brief of {size} proposals [{lang}]: {pages} pages, {len(content) / 1024:.0f} KiB, "
                f"{warm:.2f} s warm{verdict} ({cpu:.2f} s of CPU; {cold:.2f} s cold), "
                f"peak RSS of the rendering process {peak:.0f} MiB "
                f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
            if out:
                keep(out / f"brief-{size}-{lang}.pdf", content)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--out", type=Path, help="keep the PDFs in this folder")
    arguments = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="voix-bench-brief-")
    # Before anything reads the settings; the worker processes inherit the environment.
    os.environ["VOIX_SECRET_KEY"] = os.environ.get("VOIX_BENCH_SECRET_KEY", BENCH_KEY)
    os.environ["VOIX_VAR_DIR"] = directory
    os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench.sqlite3"
    try:
        asyncio.run(main(arguments.sizes, arguments.out))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
