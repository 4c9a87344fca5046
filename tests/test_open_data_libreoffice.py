"""The open-data CSV files open right in a spreadsheet: LibreOffice (headless) reads a download
of /data, both variants, with its accents and its Arabic intact, each value in its own cell,
and runs nothing as a formula. The PDF it makes is rendered to a PNG in test-output/ for
people to look at.

Needs LibreOffice's Calc (`apt-get install libreoffice-calc-nogui`) and poppler-utils.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from httpx import AsyncClient

from exports import open_data
from voix.settings import PROJECT_ROOT

from .factories import add_proposal, build_world

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
OUTPUT = PROJECT_ROOT / "test-output" / os.environ.get("VOIX_TEST_DATABASE", "sqlite")
SEPARATORS = {"csv": ",", "csv-semicolon": ";"}

pytestmark = [
    pytest.mark.skipif(
        SOFFICE is None,
        reason="NOTICE: LibreOffice is not installed (apt-get install libreoffice-calc-nogui): "
        "the open-data CSV was not opened in a spreadsheet",
    ),
    pytest.mark.skipif(
        shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
        reason="NOTICE: pdftotext is not installed (apt-get install poppler-utils): "
        "the open-data CSV was not opened in a spreadsheet",
    ),
]

SCHOOL = "École Saint-Exupéry"
ARABIC_TITLE = "مدرسة الحي"
ARABIC_BODY = "نريد ساحة مظللة أمام المدرسة"
FORMULA = "=1+1"


def soffice(profile: Path, *args: str) -> None:
    """LibreOffice headless, with a profile of its own (two at once on one profile wait)."""
    subprocess.run(
        [
            str(SOFFICE),
            "--headless",
            "--norestore",
            "--nologo",
            f"-env:UserInstallation={profile.as_uri()}",
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )


@pytest.mark.parametrize("fmt", ["csv", "csv-semicolon"])
async def test_libreoffice_opens_the_csv_with_accents_and_arabic_intact(
    client: AsyncClient, tmp_path: Path, fmt: str
) -> None:
    world = await build_world()
    await add_proposal(world.table_a, SCHOOL, body="Des bancs à l'ombre; « vite », merci")
    await add_proposal(world.table_a, ARABIC_TITLE, body=ARABIC_BODY, language="ar")
    await add_proposal(world.table_a, FORMULA, body="-2 degrés, +3 bancs")
    got = await client.get(f"/tables/{world.table_a['slug']}/data/proposals.{fmt}")
    assert got.status_code == 200
    exported = tmp_path / f"proposals-{fmt}.csv"
    exported.write_bytes(got.content)
    separator = ord(SEPARATORS[fmt])
    profile = tmp_path / "profile"
    # As a reader opening it: the separator said, the character set left to LibreOffice,
    # which reads the byte order mark.
    read_as = f"--infilter=CSV:{separator},34"

    await asyncio.to_thread(
        soffice, profile, read_as, "--convert-to", "pdf", "--outdir", str(tmp_path), str(exported)
    )
    pdf = exported.with_suffix(".pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert SCHOOL in text
    assert ARABIC_TITLE in text
    assert "Ã" not in text  # UTF-8 read as Latin-1 looks like this

    # The page with the titles (Calc prints the columns across several pages), for people.
    page = next(n for n, text in enumerate(text.split("\f"), start=1) if ARABIC_TITLE in text)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile",
         str(pdf), str(OUTPUT / f"open-data-{fmt}-libreoffice")],
        check=True,
        timeout=60,
    )  # fmt: skip

    # Cell by cell: what LibreOffice read, written out again as UTF-8 CSV, is what was sent.
    back = tmp_path / "back"
    await asyncio.to_thread(
        soffice,
        profile,
        read_as,
        "--convert-to",
        "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false",
        "--outdir",
        str(back),
        str(exported),
    )
    read = list(csv.reader(io.StringIO((back / exported.name).read_text("utf-8-sig"))))
    sent = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig")), delimiter=SEPARATORS[fmt]))
    names = [column.name for column in open_data.columns("proposals")]
    assert read[0] == names == sent[0]
    by_title = {row[names.index("title")]: row for row in read[1:]}
    assert set(by_title) == {SCHOOL, ARABIC_TITLE, "'" + FORMULA}, by_title.keys()
    assert by_title[ARABIC_TITLE][names.index("body")] == ARABIC_BODY
    assert by_title[SCHOOL][names.index("body")] == "Des bancs à l'ombre; « vite », merci"
    # The formula was neutralised: kept as text, never computed ("2").
    assert by_title["'" + FORMULA][names.index("body")] == "'-2 degrés, +3 bancs"
    assert "2" not in by_title
