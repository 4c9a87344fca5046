"""What the table writes, in the reader's language: vote questions and answers, meeting titles and
agendas, minutes and briefs, translated by facilitators; untranslated text said so; a work list
of what still needs translating, most read first."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader

from accounts.services import open_session
from audit.models import AuditEntry
from exports.models import BriefVersion
from proposals.models import ADOPTED, Translation
from translations import services as content
from translations.models import ContentOrigin, ContentRead, ContentTranslation
from voix.web import SESSION_COOKIE
from votes.models import VoteOption

from .conftest import make_client
from .factories import (
    add_proposal,
    build_world,
    csrf_token,
    post_form,
    publish_brief,
    sign_in,
    sign_out,
    t,
)
from .test_meetings import meeting_form, schedule, start
from .test_votes import open_vote_on, open_vote_over

NOT_YET = "Not translated yet — original text in %(language)s."
TRANSLATED_FROM = "Translated from %(language)s by the facilitators."


PARTLY = "Partly translated from %(language)s by the facilitators; the rest is shown as written."


def _agenda_fields(form: str) -> list[str]:
    """The names of a meeting's agenda fields, as its translation form gives them."""
    return [
        line.split('name="')[1].split('"')[0]
        for line in form.splitlines()
        if 'name="field-item:' in line
    ]


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


async def _vote(client, world) -> tuple[int, list[int]]:
    first = await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    second = await add_proposal(world.table_a, "Des bancs au square")
    vote_id = await open_vote_over(
        client, world, [first, second], question="Que porter en premier cette année ?"
    )
    options = (
        await VoteOption.select(VoteOption.id)
        .where(VoteOption.vote == vote_id)
        .order_by(VoteOption.position)
    )
    return vote_id, [o["id"] for o in options]


def _arabic_vote(options: list[int]) -> dict[str, Any]:
    return {
        "language": "ar",
        "written_in": "fr",
        "field-question": "ماذا نقدّم أولاً هذا العام؟",
        f"field-option:{options[0]}": "إصلاح مصاعد البرج G",
        f"field-option:{options[1]}": "",  # left empty: the original shows there
    }


async def test_a_translated_vote_reads_in_arabic_with_the_original_one_click_away(client) -> None:
    world = await build_world()
    vote_id, options = await _vote(client, world)
    await sign_in(client, world.users["resident_a"])
    before = await client.get(f"/votes/{vote_id}?lang=ar")
    assert "Que porter en premier cette année ?" in before.text
    assert t(NOT_YET, "ar", language="الفرنسية") in before.text

    await sign_in(client, world.users["facilitator_a"])
    form = await client.get(f"/translate/vote/{vote_id}?into=ar")
    assert form.status_code == 200
    assert "Que porter en premier cette année ?" in form.text
    assert "Des bancs au square" in form.text
    saved = await post_form(client, f"/translate/vote/{vote_id}", _arabic_vote(options))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/tables/flamants-iris/translations?into=ar"
    # Saving again corrects it: one translation per object and language.
    again = await post_form(client, f"/translate/vote/{vote_id}", _arabic_vote(options))
    assert again.status_code == 303
    assert await ContentTranslation.count() == 1

    await sign_in(client, world.users["resident_a"])
    arabic = await client.get(f"/votes/{vote_id}?lang=ar")
    assert "ماذا نقدّم أولاً هذا العام؟" in arabic.text
    assert "إصلاح مصاعد البرج G" in arabic.text
    assert "Des bancs au square" in arabic.text  # not translated: the original
    # One answer left empty: said to be a partial translation.
    assert t(PARTLY, "ar", language="الفرنسية") in arabic.text
    assert "Que porter en premier" not in arabic.text
    original = await client.get(f"/votes/{vote_id}?lang=ar&original=1")
    assert "Que porter en premier cette année ?" in original.text
    assert "ماذا نقدّم" not in original.text
    french = await client.get(f"/votes/{vote_id}?lang=fr")
    assert "Que porter en premier cette année ?" in french.text
    assert "ماذا نقدّم" not in french.text
    assert t(NOT_YET, "fr", language="français") not in french.text
    table = await client.get("/tables/flamants-iris?lang=ar")
    assert "ماذا نقدّم أولاً هذا العام؟" in table.text
    # The ballot's review step shows the same words.
    review = await post_form(
        client,
        f"/votes/{vote_id}/ballot/review?lang=ar",
        {f"grade-{options[0]}": "0", f"grade-{options[1]}": "1"},
    )
    assert review.status_code == 200, review.text
    assert "إصلاح مصاعد البرج G" in review.text


async def test_only_the_table_s_facilitators_translate_and_bad_input_changes_nothing(
    client,
) -> None:
    world = await build_world()
    vote_id, options = await _vote(client, world)
    for who in ("resident_a", "facilitator_b"):
        await sign_in(client, world.users[who])
        assert (await client.get(f"/translate/vote/{vote_id}")).status_code == 403
        assert (
            await post_form(client, f"/translate/vote/{vote_id}", _arabic_vote(options))
        ).status_code == 403
        assert (await client.get("/tables/flamants-iris/translations")).status_code == 403
    await sign_in(client, world.users["facilitator_a"])
    same = await post_form(
        client, f"/translate/vote/{vote_id}", {**_arabic_vote(options), "language": "fr"}
    )
    assert same.status_code == 400
    assert t("This is the language the text was written in; choose another one.") in same.text
    empty = await post_form(
        client,
        f"/translate/vote/{vote_id}",
        {"language": "ar", "written_in": "fr", "field-question": "  "},
    )
    assert empty.status_code == 400
    assert t("Type the translation of at least one field.") in empty.text
    long = await post_form(
        client, f"/translate/vote/{vote_id}", {**_arabic_vote(options), "field-question": "x" * 201}
    )
    assert long.status_code == 400
    odd = await post_form(
        client, f"/translate/vote/{vote_id}", {**_arabic_vote(options), "language": "xx"}
    )
    assert odd.status_code == 400
    assert (await client.get("/translate/nothing/1")).status_code == 404
    assert (await client.get(f"/translate/vote/{vote_id + 99}")).status_code == 404
    assert await ContentTranslation.count() == 0
    assert await ContentOrigin.count() == 0


async def test_the_work_list_puts_the_most_read_first_and_brings_back_a_changed_original(
    client,
) -> None:
    world = await build_world()
    quiet = await schedule(client, world, title="Réunion de printemps")
    popular = await schedule(client, world, title="Réunion sur les ascenseurs")
    sign_out(client)
    for _ in range(3):
        assert (await client.get(f"/meetings/{popular}?lang=ar")).status_code == 200
    await client.get(f"/meetings/{quiet}?lang=ar")
    await client.get(f"/meetings/{quiet}?lang=fr")  # French readers read the original
    await content.flush_reads()
    reads = {
        (row["object_id"], row["language"]): row["reads"]
        for row in await ContentRead.select().where(ContentRead.kind == "meeting")
    }
    assert reads == {(popular, "ar"): 3, (quiet, "ar"): 1}

    await sign_in(client, world.users["facilitator_a"])
    listing = await client.get("/tables/flamants-iris/translations?into=ar")
    assert listing.status_code == 200
    text = listing.text
    assert text.index("Réunion sur les ascenseurs") < text.index("Réunion de printemps")

    form = await client.get(f"/translate/meeting/{popular}?into=ar")
    assert "Les ascenseurs de la tour G" in form.text  # the agenda is part of the meeting
    saved = await post_form(
        client,
        f"/translate/meeting/{popular}",
        {
            "language": "ar",
            "written_in": "fr",
            "field-title": "اجتماع حول المصاعد",
            **dict.fromkeys(_agenda_fields(form.text), "بند"),
        },
    )
    assert saved.status_code == 303
    listing = await client.get("/tables/flamants-iris/translations?into=ar")
    assert "Réunion sur les ascenseurs" not in listing.text
    assert "Réunion de printemps" in listing.text

    # The original changes: the translation is shown as behind, and listed again.
    edit = await client.get(f"/meetings/{popular}/edit")
    assert edit.status_code == 200
    changed = await post_form(
        client,
        f"/meetings/{popular}/edit",
        meeting_form(title="Réunion sur les ascenseurs et les caves"),
    )
    assert changed.status_code == 303, changed.text
    listing = await client.get("/tables/flamants-iris/translations?into=ar")
    assert "Réunion sur les ascenseurs et les caves" in listing.text
    assert t("Update the translation", "fr") in listing.text
    page = await client.get(f"/meetings/{popular}?lang=ar")
    assert "اجتماع حول المصاعد" in page.text
    assert t("The original has changed since; this translation may be behind.", "ar") in page.text


async def test_an_arabic_original_is_recognised_and_its_language_can_be_corrected(client) -> None:
    world = await build_world()
    meeting = await schedule(client, world, title="اجتماع الجيران")
    sign_out(client)
    arabic = await client.get(f"/meetings/{meeting}?lang=ar")
    assert t(NOT_YET, "ar", language="العربية") not in arabic.text
    french = await client.get(f"/meetings/{meeting}?lang=fr")
    assert t(NOT_YET, "fr", language="arabe") in french.text

    await sign_in(client, world.users["facilitator_a"])
    form = await client.get(f"/translate/meeting/{meeting}")
    assert 'value="ar" lang="ar" selected' in form.text

    # A title typed in English is guessed French (same script) until a facilitator says so.
    english_title = await schedule(client, world, title="Neighbours' evening")
    saved = await post_form(
        client,
        f"/translate/meeting/{english_title}",
        {"language": "fr", "written_in": "en", "field-title": "Soirée des voisins"},
    )
    assert saved.status_code == 303, saved.text
    assert await ContentOrigin.count() == 1
    sign_out(client)
    english = await client.get(f"/meetings/{english_title}?lang=en")
    assert t(NOT_YET, "en", language="English") not in english.text
    assert "Neighbours&#39; evening" in english.text
    french = await client.get(f"/meetings/{english_title}?lang=fr")
    assert "Soirée des voisins" in french.text
    assert t(PARTLY, "fr", language="anglais") in french.text  # its agenda is not


async def test_translated_minutes_are_sanitised_and_follow_the_newest_version(client) -> None:
    world = await build_world()
    meeting = await schedule(client, world)
    await start(client, meeting)
    await post_form(client, f"/meetings/{meeting}/close", {})
    published = await post_form(
        client,
        f"/meetings/{meeting}/minutes",
        {"body": "## Ouverture\n\nSéance ouverte.", "action": "publish"},
    )
    assert published.status_code == 303
    saved = await post_form(
        client,
        f"/translate/minutes/{meeting}",
        {
            "language": "ar",
            "written_in": "fr",
            "field-body": "## الافتتاح\n\nافتُتحت الجلسة. <script>alert(1)</script>",
        },
    )
    assert saved.status_code == 303, saved.text
    sign_out(client)
    arabic = await client.get(f"/meetings/{meeting}/minutes?lang=ar")
    assert "<h2>الافتتاح</h2>" in arabic.text
    assert "<script>alert(1)" not in arabic.text
    assert "Séance ouverte." not in arabic.text
    # A new version: its text is shown, not the translation of the older one, and said so.
    await sign_in(client, world.users["facilitator_a"])
    await post_form(
        client,
        f"/meetings/{meeting}/minutes",
        {"body": "Séance ouverte à 18 h 30.", "action": "publish"},
    )
    sign_out(client)
    arabic = await client.get(f"/meetings/{meeting}/minutes?lang=ar")
    assert "افتُتحت الجلسة" in arabic.text
    assert t("The original has changed since; this translation may be behind.", "ar") in arabic.text
    older = await client.get(f"/meetings/{meeting}/minutes?lang=ar&version=1")
    assert "Séance ouverte." in older.text


async def test_briefs_read_in_the_reader_s_language_pages_and_pdfs(client) -> None:
    world = await build_world()
    proposal = await add_proposal(
        world.table_a, "Réparer les ascenseurs de la tour G", status=ADOPTED
    )
    await Translation.insert(
        Translation(
            proposal=proposal,
            language="en",
            title="Repair the lifts of tower G",
            body="The lifts break down every week.",
            updated_at=datetime.now(UTC),
        )
    )
    slug = await publish_brief(
        world.table_a, world.users["facilitator_a"], title="Rénovation des Flamants : nos priorités"
    )
    url = f"/briefs/{slug}"
    await sign_in(client, world.users["facilitator_a"])
    version_id = (await BriefVersion.select(BriefVersion.id).first())["id"]
    saved = await post_form(
        client,
        f"/translate/brief/{version_id}",
        {
            "language": "en",
            "written_in": "fr",
            "field-title": "Renovating Les Flamants: our priorities",
            "field-context": "The table *debated*, then voted on these proposals.",
        },
    )
    assert saved.status_code == 303, saved.text
    english = await client.get(f"{url}?lang=en")
    assert "Renovating Les Flamants: our priorities" in english.text
    assert "Repair the lifts of tower G" in english.text
    assert t(TRANSLATED_FROM, "en", language="French") in english.text
    pdf = pdf_text((await client.get(f"{url}/pdf/en")).content)
    assert "Renovating Les Flamants" in pdf
    assert "Repair the lifts of tower G" in pdf
    assert "The table debated" in pdf  # the translated context, its Markdown rendered
    french = pdf_text((await client.get(f"{url}/pdf/fr")).content)
    assert "Rénovation des Flamants" in french
    assert "Renovating" not in french


async def test_the_poster_prints_the_agenda_in_each_language_it_was_translated_into(
    client,
) -> None:
    world = await build_world()
    meeting = await schedule(client, world, languages=["fr", "en"])
    form = await client.get(f"/translate/meeting/{meeting}?into=en")
    items = _agenda_fields(form.text)
    assert len(items) == 3
    untranslated = pdf_text((await client.get(f"/meetings/{meeting}/poster.pdf")).content)
    assert untranslated.count("Les ascenseurs de la tour G") == 1
    await post_form(
        client,
        f"/translate/meeting/{meeting}",
        {
            "language": "en",
            "written_in": "fr",
            "field-title": "Table meeting — renovation",
            items[1]: "The lifts of tower G",
        },
    )
    poster = pdf_text((await client.get(f"/meetings/{meeting}/poster.pdf")).content)
    assert "Les ascenseurs de la tour G" in poster
    assert "The lifts of tower G" in poster
    assert "Table meeting — renovation" in poster


async def test_simultaneous_saves_of_one_translation_all_succeed_and_leave_one(client, app) -> None:
    """Two facilitators (or one double click) saving at once: no error, one translation."""
    world = await build_world()
    meeting = await schedule(client, world)
    session = await open_session(world.users["facilitator_a"], verified=True)
    token = await csrf_token(client)

    async def save(n: int) -> int:
        async with make_client(app) as browser:
            browser.cookies.update({SESSION_COOKIE: session, "csrftoken": token})
            response = await browser.post(
                f"/translate/meeting/{meeting}",
                data={
                    "language": "ar",
                    "written_in": "en",
                    "field-title": f"اجتماع رقم {n}",
                    "_csrf_token": token,
                },
            )
        return response.status_code

    codes = await asyncio.gather(*(save(n) for n in range(12)))
    assert codes == [303] * 12, codes
    assert await ContentTranslation.count() == 1
    assert await ContentOrigin.count() == 1


async def test_no_translation_stands_in_for_the_original_in_its_own_language(client) -> None:
    """Saying a French text is Arabic, to "translate" it into French, is refused: French
    readers always read what was written. Every save is in the table's journal."""
    world = await build_world()
    vote_id, options = await _vote(client, world)
    forged = await post_form(
        client,
        f"/translate/vote/{vote_id}",
        {"language": "fr", "written_in": "ar", "field-question": "Une autre question"},
    )
    assert forged.status_code == 400
    assert t("The original is not written in this language's script.") in forged.text
    assert await ContentTranslation.count() == 0
    assert await ContentOrigin.count() == 0
    saved = await post_form(client, f"/translate/vote/{vote_id}", _arabic_vote(options))
    assert saved.status_code == 303
    entries = await AuditEntry.select().where(AuditEntry.action == "content.translated")
    assert [(e["subject"], e["table_id"]) for e in entries] == [
        (f"vote:{vote_id}", world.table_a["id"])
    ]
    french = await client.get(f"/votes/{vote_id}?lang=fr")
    assert "Que porter en premier cette année ?" in french.text


async def test_a_partial_translation_says_so_and_stays_on_the_work_list(client) -> None:
    world = await build_world()
    vote_id, options = await _vote(client, world)
    await post_form(client, f"/translate/vote/{vote_id}", _arabic_vote(options))
    listing = await client.get("/tables/flamants-iris/translations?into=ar")
    assert "Que porter en premier cette année ?" in listing.text
    assert t("Update the translation") in listing.text
    page = await client.get(f"/votes/{vote_id}?lang=ar")
    partly = (
        "Partly translated from %(language)s by the facilitators; the rest is shown as written."
    )
    assert t(partly, "ar", language="الفرنسية") in page.text
    complete = {**_arabic_vote(options), f"field-option:{options[1]}": "مقاعد في الحديقة"}
    await post_form(client, f"/translate/vote/{vote_id}", complete)
    listing = await client.get("/tables/flamants-iris/translations?into=ar")
    assert "Que porter en premier cette année ?" not in listing.text
    page = await client.get(f"/votes/{vote_id}?lang=ar")
    assert t(TRANSLATED_FROM, "ar", language="الفرنسية") in page.text


async def test_every_page_showing_a_translated_question_or_title_shows_the_translation(
    client,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    vote_id = await open_vote_on(client, world, proposal, question="Réparer les ascenseurs ?")
    meeting = await schedule(client, world, title="Réunion des voisins de la tour G")
    await post_form(
        client,
        f"/translate/vote/{vote_id}",
        {"language": "en", "written_in": "fr", "field-question": "Repair the lifts?"},
    )
    await post_form(
        client,
        f"/translate/meeting/{meeting}",
        {"language": "en", "written_in": "fr", "field-title": "Tower G neighbours' meeting"},
    )
    pages = {
        f"/proposals/{proposal}": "Repair the lifts?",
        f"/votes/{vote_id}/close": "Repair the lifts?",
        "/tables/flamants-iris/meetings": "Tower G neighbours&#39; meeting",
        f"/meetings/{meeting}/check-in": "Tower G neighbours&#39; meeting",
        f"/meetings/{meeting}/attendance": "Tower G neighbours&#39; meeting",
        f"/meetings/{meeting}/control": "Tower G neighbours&#39; meeting",
        f"/meetings/{meeting}/screen": "Tower G neighbours&#39; meeting",
    }
    for url, expected in pages.items():
        response = await client.get(f"{url}?lang=en")
        assert response.status_code == 200, url
        assert expected in response.text, url
    await sign_in(client, world.users["resident_a"])
    await client.post(
        f"/meetings/{meeting}/check-in", data={"_csrf_token": await csrf_token(client)}
    )
    home = await client.get("/?lang=en")
    assert "Tower G neighbours&#39; meeting" in home.text


async def test_the_minutes_pdf_reads_in_the_reader_s_language(client) -> None:
    world = await build_world()
    meeting = await schedule(client, world)
    await start(client, meeting)
    await post_form(client, f"/meetings/{meeting}/close", {})
    await post_form(
        client, f"/meetings/{meeting}/minutes", {"body": "Séance ouverte.", "action": "publish"}
    )
    await post_form(
        client,
        f"/translate/minutes/{meeting}",
        {"language": "en", "written_in": "fr", "field-body": "The meeting is open."},
    )
    english = pdf_text((await client.get(f"/meetings/{meeting}/minutes.pdf?lang=en")).content)
    assert "The meeting is open." in english
    assert "Séance ouverte." not in english
    assert t(TRANSLATED_FROM, "en", language="French") in " ".join(english.split())
    french = pdf_text((await client.get(f"/meetings/{meeting}/minutes.pdf?lang=fr")).content)
    assert "Séance ouverte." in french
    # A new version: the document sent out carries its text, not an older translation.
    await post_form(
        client,
        f"/meetings/{meeting}/minutes",
        {"body": "Séance ouverte à 18 h 30.", "action": "publish"},
    )
    english = pdf_text((await client.get(f"/meetings/{meeting}/minutes.pdf?lang=en")).content)
    assert "Séance ouverte à 18 h 30." in english
    assert "The meeting is open." not in english


async def test_no_part_is_translated_into_the_script_it_is_written_in_nor_a_closed_vote_relabelled(
    client,
) -> None:
    world = await build_world()
    meeting = await schedule(
        client, world, title="اجتماع الجيران", agenda="Fermer le marché le dimanche"
    )
    (item,) = _agenda_fields((await client.get(f"/translate/meeting/{meeting}?into=fr")).text)
    forged = await post_form(
        client,
        f"/translate/meeting/{meeting}",
        {"language": "fr", "written_in": "ar", "field-title": "Réunion des voisins", item: "Autre"},
    )
    assert forged.status_code == 400
    assert t("This part is already written in this language's script.") in forged.text
    # The title alone: the French item needs no translation into French, so it is complete.
    saved = await post_form(
        client,
        f"/translate/meeting/{meeting}",
        {"language": "fr", "written_in": "ar", "field-title": "Réunion des voisins"},
    )
    assert saved.status_code == 303
    page = await client.get(f"/meetings/{meeting}?lang=fr")
    assert "Fermer le marché le dimanche" in page.text
    assert t(TRANSLATED_FROM, "fr", language="arabe") in page.text

    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs")
    vote_id = await open_vote_on(client, world, proposal, question="Réparer les ascenseurs ?")
    await post_form(client, f"/votes/{vote_id}/close", {})
    relabelled = await post_form(
        client,
        f"/translate/vote/{vote_id}",
        {"language": "fr", "written_in": "en", "field-question": "Interdire le marché ?"},
    )
    assert relabelled.status_code == 400
    assert (
        t("This vote is closed: the language its text was written in can no longer change.")
        in relabelled.text
    )
    assert await ContentTranslation.count() == 1
