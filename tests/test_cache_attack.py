"""Attacks on what pages keep (voix.cache) and on the revision triggers (tables/revision.py),
as an outsider and as each kind of person (issue 15).

Two kinds of test here:
- guards: what was tried and holds (a cached part served to the wrong reader, a change the
  triggers cover, a process that did not make the change), which must keep holding;
- holes: a change no trigger records, or a bound the cache does not keep, each shown by a test
  that fails until it is fixed.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from httpx import AsyncClient

from accounts.models import User
from maps.models import District
from meetings.models import Meeting
from proposals.models import Comment, Media, Proposal, StatusChange, Translation
from tables.models import FACILITATOR, Organisation, Table, TableDistrict
from tests.conftest import DATABASE_KIND
from tests.factories import (
    PASSWORD,
    add_draft,
    add_proposal,
    add_table,
    add_user,
    build_world,
    csrf_token,
    post_form,
    seat,
    sign_in,
    sign_out,
    t,
)
from voix import cache, db
from votes.models import Vote

pytestmark = pytest.mark.usefixtures("empty_cache")  # tests/conftest.py

TABLE_A = "/tables/flamants-iris"


def text_of(html: str) -> str:
    """The page's words, tags taken out (names sit in <bdi>)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


async def raw_write(sql: str, *args: Any) -> None:
    """A change made by another process (psql, another worker, a replica's job): its own
    connection, never this process's engine nor its cache."""
    engine = db.engine()
    if isinstance(engine, db.SQLite):
        connection = sqlite3.connect(engine.connection_kwargs["database"], isolation_level=None)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute(sql, args)
        finally:
            connection.close()
        return
    numbers = iter(range(1, sql.count("?") + 1))
    statement = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
    connection = await asyncpg.connect(engine.config["dsn"])
    try:
        await connection.execute(statement, *args)
    finally:
        await connection.close()


async def one(query: Any) -> dict[str, Any]:
    """The first row of a query, which must have one."""
    row = await query.first()
    assert row is not None
    return dict(row)


def deep_size(value: Any) -> int:
    """Bytes held by a kept value and everything it refers to (each object once): as the cache
    itself counts them (voix.cache.size_of), so its budget is the bytes these tests weigh."""
    return cache.size_of(value)


def kept_entries() -> Iterator[tuple[Any, Any]]:
    for key, (_, value, _size) in list(cache.pages._entries.items()):
        yield key, value


# --- Cached parts served to the wrong reader -------------------------------------------------


async def test_what_a_facilitator_sees_is_never_served_to_anonymous_or_a_resident(
    client: AsyncClient, app: object
) -> None:
    """The facilitator warms every kept part first (list, side, proposal), with a draft, a
    hidden comment and their own CSRF token on the page; the others then read the same keys."""
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    await add_draft(world.table_a, "Brouillon secret des animatrices", proposals=[proposal])
    await sign_in(client, world.users["resident_a"])
    await post_form(client, f"/proposals/{proposal}/comments", {"body": "Propos injurieux ici"})
    comment = await one(Comment.select(Comment.id))
    await sign_in(client, world.users["facilitator_a"])
    hidden = await post_form(
        client,
        f"/proposals/{proposal}/moderation",
        {"comment": str(comment["id"]), "action": "hide", "reason": "Insulte"},
    )
    assert hidden.status_code == 303
    facilitator_token = await csrf_token(client)
    table_page = await client.get(TABLE_A)
    proposal_page = await client.get(f"/proposals/{proposal}")
    assert "Brouillon secret des animatrices" in table_page.text
    assert "Propos injurieux ici" in proposal_page.text  # moderators see what was hidden
    assert facilitator_token in proposal_page.text
    await sign_in(client, world.users["coordinator_a"])
    journal = 'href="/organisations/avec-nous/audit"'  # organisation A's journal
    assert journal in (await client.get("/")).text
    await sign_in(client, world.users["facilitator_a"])
    cold = len(cache.pages._entries)
    assert cold >= 3  # list, side, proposal: kept

    for role in (None, "resident_a", "resident_b", "facilitator_b", "coordinator_b"):
        client.cookies.clear()
        if role is not None:
            await sign_in(client, world.users[role])
        table_page = await client.get(TABLE_A)
        proposal_page = await client.get(f"/proposals/{proposal}")
        assert table_page.status_code == proposal_page.status_code == 200, role
        assert "Brouillon secret des animatrices" not in table_page.text, role
        assert "Propos injurieux ici" not in proposal_page.text, role
        assert t("Schedule a meeting") not in table_page.text, role
        assert 'value="show"' not in proposal_page.text, role  # a moderator's button
        for page in (table_page, proposal_page):
            assert facilitator_token not in page.text, role
        assert journal not in (await client.get("/")).text, role
    # And these pages were served from what the facilitator's requests kept.
    assert cache.pages.hits > 0


async def test_a_kept_list_is_never_served_for_another_filter_or_language(
    client: AsyncClient, app: object
) -> None:
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs", theme="housing")
    await add_proposal(world.table_a, "Plus de bus le soir", theme="transport")
    housing = await client.get(f"{TABLE_A}?theme=housing")
    transport = await client.get(f"{TABLE_A}?theme=transport")
    assert "Réparer les ascenseurs" in housing.text
    assert "Plus de bus le soir" not in housing.text
    assert "Plus de bus le soir" in transport.text
    assert "Réparer les ascenseurs" not in transport.text
    searched = await client.get(f"{TABLE_A}?q=bus")
    assert "Plus de bus le soir" in searched.text
    assert "Réparer les ascenseurs" not in searched.text
    # The same list read in Arabic, then French, then Arabic: each in its own language.
    arabic = await client.get(f"{TABLE_A}?lang=ar")
    french = await client.get(f"{TABLE_A}?lang=fr")
    assert "2 propositions" in text_of(french.text)
    assert "2 propositions" not in text_of(arabic.text)
    assert t("Proposals", "ar") in arabic.text
    assert t("No proposal matches these filters.", "fr") not in french.text
    # No Arabic letter in the French list, nor French words of the list in the Arabic one.
    listing_fr = french.text.split('id="proposals"')[1].split("</div>")[0]
    listing_ar = arabic.text.split('id="proposals"')[1].split("</div>")[0]
    assert not re.search(r"[\u0600-\u06ff]", listing_fr)
    assert re.search(r"[\u0600-\u06ff]", listing_ar)


async def test_a_closed_votes_summary_is_in_the_readers_language(
    client: AsyncClient, app: object
) -> None:
    """The side's vote summaries are rendered once through a template's module: kept in
    Arabic for an Arabic reader, never shown to a French one, and the other way round."""
    from tests.test_votes import close_by_hand, open_vote_on

    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    vote = await open_vote_on(client, world, proposal)
    await close_by_hand(client, world, vote)
    client.cookies.clear()
    for first, second in (("ar", "fr"), ("fr", "ar")):
        cache.pages.clear()
        one = await client.get(f"{TABLE_A}?lang={first}")
        two = await client.get(f"{TABLE_A}?lang={second}")
        for lang, page in ((first, one), (second, two)):
            summary = page.text.split('class="vote-result-summary"')[1].split("</div>")[0]
            arabic = bool(re.search(r"[\u0600-\u06ff]", summary))
            assert arabic == (lang == "ar"), (first, lang, summary)


async def test_a_hidden_proposal_leaves_every_kept_page_at_once(
    client: AsyncClient, app: object
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Titre injurieux à cacher")
    await add_proposal(world.table_a, "Une autre proposition")
    for query in ("", "?q=injurieux", "?theme=housing", "?lang=ar", "?sort=supports"):
        assert "Titre injurieux à cacher" in (await client.get(TABLE_A + query)).text
    assert "Titre injurieux" in (await client.get(f"/proposals/{proposal}")).text
    await sign_in(client, world.users["facilitator_a"])
    hidden = await post_form(client, f"/proposals/{proposal}/moderation", {"reason": "Insulte"})
    assert hidden.status_code == 303
    sign_out(client)
    for query in ("", "?q=injurieux", "?theme=housing", "?lang=ar", "?sort=supports"):
        page = await client.get(TABLE_A + query)
        assert "Titre injurieux à cacher" not in page.text, query
    fragment = await client.get(
        f"{TABLE_A}?q=injurieux", headers={"HX-Request": "true", "HX-Target": "proposals"}
    )
    assert "Titre injurieux" not in fragment.text
    assert "Titre injurieux" not in (await client.get(f"/proposals/{proposal}")).text


async def test_hiding_done_by_another_process_is_seen_at_once(
    client: AsyncClient, app: object
) -> None:
    """The page cache is per process; the revision is read from the database each request,
    so a change made elsewhere (another worker, psql) shows at the next request here."""
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Titre injurieux à cacher")
    assert "Titre injurieux" in (await client.get(TABLE_A)).text
    assert "Titre injurieux" in (await client.get(f"/proposals/{proposal}")).text
    await raw_write(
        "UPDATE proposal SET hidden_at = ?, hidden_reason = ? WHERE id = ?",
        datetime.now(UTC).isoformat() if DATABASE_KIND == "sqlite" else datetime.now(UTC),
        "Insulte",
        proposal,
    )
    assert "Titre injurieux" not in (await client.get(TABLE_A)).text
    assert "Titre injurieux" not in (await client.get(f"/proposals/{proposal}")).text
    await raw_write("UPDATE proposal SET hidden_at = NULL WHERE id = ?", proposal)
    await raw_write(
        "INSERT INTO proposal_comment (proposal, body, created_at, hidden_reason) "
        "VALUES (?, ?, ?, '')",
        proposal,
        "Écrit par un autre processus",
        datetime.now(UTC).isoformat() if DATABASE_KIND == "sqlite" else datetime.now(UTC),
    )
    assert "Écrit par un autre processus" in (await client.get(f"/proposals/{proposal}")).text


# --- Roles: permissions are never kept --------------------------------------------------------


async def test_a_role_change_shows_at_the_next_request(client: AsyncClient, app: object) -> None:
    world = await build_world()
    resident = world.users["resident_a"]
    proposal = await add_proposal(world.table_a)
    await add_draft(world.table_a, "Brouillon des animatrices", proposals=[proposal])
    await sign_in(client, resident)
    assert "Brouillon des animatrices" not in (await client.get(TABLE_A)).text
    assert 'value="show"' not in (await client.get(f"/proposals/{proposal}")).text
    # Promoted by the coordinator (a resident with a password may be).
    await sign_in(client, world.users["coordinator_a"])
    promoted = await post_form(
        client, f"{TABLE_A}/residents/{resident}/role", {"role": FACILITATOR}
    )
    assert promoted.status_code == 303, promoted.text[-500:]
    await sign_in(client, resident)
    page = await client.get(TABLE_A)
    assert "Brouillon des animatrices" in page.text
    assert t("Schedule a meeting") in page.text
    assert t("Reason") in (await client.get(f"/proposals/{proposal}")).text  # may hide
    # Made resident again: the buttons and drafts go at once.
    await sign_in(client, world.users["coordinator_a"])
    demoted = await post_form(client, f"{TABLE_A}/residents/{resident}/role", {"role": "resident"})
    assert demoted.status_code == 303
    await sign_in(client, resident)
    page = await client.get(TABLE_A)
    assert "Brouillon des animatrices" not in page.text
    assert t("Schedule a meeting") not in page.text
    # A facilitator taken off the table (their membership gone, by another process).
    await sign_in(client, world.users["facilitator_a"])
    assert "Brouillon des animatrices" in (await client.get(TABLE_A)).text
    await raw_write('DELETE FROM membership WHERE "user" = ?', world.users["facilitator_a"])
    page = await client.get(TABLE_A)
    assert "Brouillon des animatrices" not in page.text
    assert t("Schedule a meeting") not in page.text


# --- Changes the triggers record -------------------------------------------------------------


async def test_erasing_an_account_takes_its_name_off_every_kept_page(
    client: AsyncClient, app: object
) -> None:
    """GDPR erasure: the person's name beside their proposal (list and page), their comment,
    and the history of a status they changed, gone at once from pages kept before."""
    world = await build_world()
    author = await add_user("samia", "Samia Bouzid")
    await seat(author, world.table_a)
    recorder = await add_user("animatrice", "Nadia Recueil")
    await seat(recorder, world.table_a, FACILITATOR)
    coordinator = world.users["coordinator_a"]
    await User.update({User.display_name: "Coralie Coordination"}).where(User.id == coordinator)
    proposal = await add_proposal(world.table_a, "Un banc devant l'école", author=author)
    # Nothing but a proposal of theirs: only the foreign key (set null) changes a proposal row.
    quiet = await add_user("karim", "Karim Sans-Commentaire")
    await seat(quiet, world.table_a)
    await add_proposal(world.table_a, "Un terrain de foot", author=quiet)
    recorded = await add_proposal(world.table_a, "Un abri bus", recorded_by=recorder)
    await Comment.insert(
        Comment(proposal=proposal, author=author, body="Je confirme, il manque un banc")
    )
    await StatusChange.insert(
        StatusChange(
            proposal=proposal,
            from_status="submitted",
            to_status="discussion",
            actor=coordinator,
            at=datetime.now(UTC),
        )
    )
    names = {
        "Karim Sans-Commentaire": quiet,
        "Samia Bouzid": author,
        "Nadia Recueil": recorder,
        "Coralie Coordination": coordinator,
    }
    pages = (TABLE_A, f"{TABLE_A}?lang=ar", f"/proposals/{proposal}", f"/proposals/{recorded}")
    seen = " ".join([text_of((await client.get(page)).text) for page in pages])
    for name in names:
        assert name in seen, name
    for name, user_id in names.items():
        await sign_in(client, user_id)
        erased = await post_form(client, "/account/erase", {"password": PASSWORD, "confirm": "yes"})
        assert erased.status_code in (200, 303), (name, erased.text[-300:])
        assert not await User.exists().where(User.id == user_id)
        client.cookies.clear()
        for page in pages:
            assert name not in text_of((await client.get(page)).text), (name, page)


async def test_moderation_translation_consent_and_moves_show_at_once(
    client: AsyncClient, app: object
) -> None:
    """Through the application's forms, as a facilitator of table A: each change shows on the
    pages kept just before it."""
    world = await build_world()
    table_b = world.table_b
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    duplicate = await add_proposal(world.table_a, "Des bancs devant l'école")
    await sign_in(client, world.users["resident_a"])
    await post_form(client, f"/proposals/{proposal}/comments", {"body": "Commentaire à cacher"})
    comment = await one(Comment.select(Comment.id))
    sign_out(client)
    assert "Commentaire à cacher" in (await client.get(f"/proposals/{proposal}")).text
    await sign_in(client, world.users["facilitator_a"])
    await post_form(
        client,
        f"/proposals/{proposal}/moderation",
        {"comment": str(comment["id"]), "action": "hide", "reason": "Hors sujet"},
    )
    sign_out(client)
    assert "Commentaire à cacher" not in (await client.get(f"/proposals/{proposal}")).text
    # A merge: the duplicate leaves the list.
    assert "Des bancs devant" in (await client.get(TABLE_A)).text
    await sign_in(client, world.users["facilitator_a"])
    merged = await post_form(
        client, f"/proposals/{duplicate}/merge", {"into": str(proposal), "reason": "Doublon"}
    )
    assert merged.status_code == 303, merged.text[-300:]
    sign_out(client)
    assert "Des bancs devant" not in (await client.get(TABLE_A)).text
    # A facilitator's translation into Arabic: the Arabic list and page show it, the French not.
    arabic_title = "مقعد أمام المدرسة"
    assert arabic_title not in (await client.get(f"{TABLE_A}?lang=ar")).text
    assert arabic_title not in (await client.get(f"/proposals/{proposal}?lang=ar")).text
    await Translation.insert(
        Translation(
            proposal=proposal,
            language="ar",
            title=arabic_title,
            body="نص مترجم",
            updated_at=datetime.now(UTC),
        )
    )
    assert arabic_title in (await client.get(f"{TABLE_A}?lang=ar")).text
    assert arabic_title in (await client.get(f"/proposals/{proposal}?lang=ar")).text
    assert arabic_title not in (await client.get(f"{TABLE_A}?lang=fr")).text
    assert arabic_title not in (await client.get(f"/proposals/{proposal}?lang=fr")).text
    # The author agrees that their photo is printed: the page they read says so at once.
    author = world.users["resident_a"]
    await Proposal.update({Proposal.author: author}).where(Proposal.id == proposal)
    rows = await Media.insert(
        Media(
            proposal=proposal,
            kind="photo",
            token="photo-du-banc-0123456",
            content_type="image/jpeg",
            data=b"not really a jpeg",
            size=17,
            created_at=datetime.now(UTC),
        )
    ).returning(Media.id)
    agreed = t("This photo may be printed in the documents the table sends to institutions.")
    await sign_in(client, author)
    assert agreed not in (await client.get(f"/proposals/{proposal}")).text
    await raw_write(
        "UPDATE proposal_media SET publication_consent_at = ? WHERE id = ?",
        datetime.now(UTC).isoformat() if DATABASE_KIND == "sqlite" else datetime.now(UTC),
        rows[0]["id"],
    )
    assert agreed in (await client.get(f"/proposals/{proposal}")).text
    sign_out(client)
    # A proposal moved to another table (by another process): it leaves A's list, joins B's.
    await client.get("/tables/les-aygalades")
    assert "Un banc devant" in (await client.get(TABLE_A)).text
    await raw_write('UPDATE proposal SET "table" = ? WHERE id = ?', table_b["id"], proposal)
    assert "Un banc devant" not in (await client.get(TABLE_A)).text
    assert "Un banc devant" in (await client.get("/tables/les-aygalades")).text


async def test_a_meeting_cancelled_or_renamed_shows_at_once(
    client: AsyncClient, app: object
) -> None:
    world = await build_world()
    starts = datetime.now(UTC) + timedelta(days=3)
    rows = await Meeting.insert(
        Meeting(
            table=world.table_a["id"],
            title="Table de décembre",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            place="Centre social",
            address="Avenue",
            languages="fr",
        )
    ).returning(Meeting.id)
    assert "Table de décembre" in (await client.get(TABLE_A)).text
    await raw_write("UPDATE meeting SET title = ? WHERE id = ?", "Table de janvier", rows[0]["id"])
    page = (await client.get(TABLE_A)).text
    assert "Table de janvier" in page
    assert "Table de décembre" not in page
    await raw_write("DELETE FROM meeting WHERE id = ?", rows[0]["id"])
    assert "Table de janvier" not in (await client.get(TABLE_A)).text


async def test_names_of_the_table_its_organisation_and_districts_show_at_once(
    client: AsyncClient, app: object
) -> None:
    world = await build_world()
    await add_proposal(world.table_a)
    assert "Quartier flamants-iris" in text_of((await client.get(TABLE_A)).text)
    assert "Quartier flamants-iris" in text_of((await client.get("/")).text)
    district = await one(
        TableDistrict.select(TableDistrict.district).where(
            TableDistrict.table == world.table_a["id"]
        )
    )
    await raw_write("UPDATE district SET name = ? WHERE id = ?", "Les Iris", district["district"])
    await raw_write(
        "UPDATE organisation SET name = ? WHERE id = ?",
        "Avec Nous Marseille",
        world.table_a["organisation"],
    )
    await raw_write(
        "UPDATE neighbourhood_table SET name = ? WHERE id = ?",
        "Flamants et Iris",
        world.table_a["id"],
    )
    page = text_of((await client.get(TABLE_A)).text)
    assert "Les Iris" in page
    assert "Quartier flamants-iris" not in page
    assert "Avec Nous Marseille" in page
    assert "Flamants et Iris" in page
    home = text_of((await client.get("/")).text)
    assert "Les Iris" in home
    assert "Avec Nous Marseille" in home


# --- Changes no trigger records ----------------------------------------------------------------


async def test_a_renamed_person_not_at_the_table_is_renamed_on_the_proposal_page(
    client: AsyncClient, app: object
) -> None:
    """A coordinator (not a member of the table) moves a proposal on: the history names them;
    a comment by a resident who has since left the table names them too. Their display name
    changes (an administrator's correction): the account trigger counts only members and
    authors, so the proposal page keeps the old name until its time limit (60 s)."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    coordinator = world.users["coordinator_a"]
    await User.update({User.display_name: "Coralie Ancien-Nom"}).where(User.id == coordinator)
    await sign_in(client, coordinator)
    moved = await post_form(
        client,
        f"/proposals/{proposal}/status",
        {"status": "discussion", "reason": "On en parle à la table"},
    )
    assert moved.status_code == 303, moved.text[-500:]
    sign_out(client)
    assert "Coralie Ancien-Nom" in text_of((await client.get(f"/proposals/{proposal}")).text)
    await raw_write(
        "UPDATE account SET display_name = ? WHERE id = ?", "Coralie Nouveau-Nom", coordinator
    )
    page = text_of((await client.get(f"/proposals/{proposal}")).text)
    assert "Coralie Nouveau-Nom" in page
    assert "Coralie Ancien-Nom" not in page


async def test_a_former_members_comment_is_renamed_on_the_proposal_page(
    client: AsyncClient, app: object
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    resident = world.users["resident_a"]
    await User.update({User.display_name: "Samia Ancien-Nom"}).where(User.id == resident)
    await Comment.insert(Comment(proposal=proposal, author=resident, body="Bonne idée"))
    await raw_write('DELETE FROM membership WHERE "user" = ?', resident)  # left the table
    assert "Samia Ancien-Nom" in text_of((await client.get(f"/proposals/{proposal}")).text)
    await raw_write(
        "UPDATE account SET display_name = ? WHERE id = ?", "Samia Nouveau-Nom", resident
    )
    page = text_of((await client.get(f"/proposals/{proposal}")).text)
    assert "Samia Nouveau-Nom" in page
    assert "Samia Ancien-Nom" not in page


async def test_a_districts_new_slug_shows_in_the_table_pages_filter(
    client: AsyncClient, app: object
) -> None:
    """The table's districts (services.districts) are kept an hour per revision; a district's
    slug (the filter's value) and `approximate` are not among the columns that move it."""
    world = await build_world()
    second = await District.insert(
        District(
            slug="les-iris",
            name="Les Iris",
            postcode="13014",
            boundary={"type": "Polygon", "coordinates": []},
        )
    ).returning(District.id)
    await TableDistrict.insert(TableDistrict(table=world.table_a["id"], district=second[0]["id"]))
    assert 'value="les-iris"' in (await client.get(TABLE_A)).text
    await raw_write("UPDATE district SET slug = ? WHERE id = ?", "iris-nord", second[0]["id"])
    page = (await client.get(TABLE_A)).text
    assert 'value="iris-nord"' in page
    assert 'value="les-iris"' not in page


async def test_imported_boundaries_take_the_approximate_note_off_the_table_page(
    client: AsyncClient, app: object
) -> None:
    """`voix import-districts` replaces boundaries and clears `approximate`: neither column
    moves the revision, so the kept map (and its « approximate » note) stays up to 60 s."""
    from tests.factories import FLAMANTS_SQUARE, draw_district

    world = await build_world()
    district = await draw_district(world.table_a, FLAMANTS_SQUARE, approximate=True)
    await add_proposal(world.table_a, latitude=43.329, longitude=5.41, district=district)
    note = t("District boundaries are approximate for now.")
    assert note in (await client.get(TABLE_A)).text
    await raw_write("UPDATE district SET approximate = ? WHERE id = ?", False, district)
    assert note not in (await client.get(TABLE_A)).text


async def test_a_new_slug_of_the_table_is_in_the_kept_lists_links(
    client: AsyncClient, app: object
) -> None:
    """The list's page links carry the table's slug; the table's own row moves no revision."""
    world = await build_world()
    for n in range(21):
        await add_proposal(world.table_a, f"Proposition numéro {n:02d}")
    assert 'href="/tables/flamants-iris?page=2"' in (await client.get(TABLE_A)).text
    await raw_write(
        "UPDATE neighbourhood_table SET slug = ? WHERE id = ?", "flamants", world.table_a["id"]
    )
    page = (await client.get("/tables/flamants")).text
    assert 'href="/tables/flamants?page=2"' in page
    assert "/tables/flamants-iris?page=2" not in page


# --- Time ------------------------------------------------------------------------------------


async def test_a_vote_closing_by_time_shows_closed_on_kept_pages(
    client: AsyncClient, app: object
) -> None:
    from tests.test_votes import open_vote_on

    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    closes = datetime.now(UTC) + timedelta(seconds=2)
    vote = await open_vote_on(client, world, proposal)
    await Vote.update({Vote.closes_at: closes}).where(Vote.id == vote)
    sign_out(client)
    open_label = t("Open")
    assert open_label in (await client.get(TABLE_A)).text
    assert open_label in (await client.get(f"/proposals/{proposal}")).text
    await asyncio.sleep(max(0.0, (closes - datetime.now(UTC)).total_seconds()) + 0.3)
    table_page = (await client.get(TABLE_A)).text
    proposal_page = (await client.get(f"/proposals/{proposal}")).text
    assert 'class="badge open"' not in table_page
    assert 'class="badge open"' not in proposal_page


# --- Memory ----------------------------------------------------------------------------------


async def test_random_searches_keep_at_most_the_cache_size(
    client: AsyncClient, app: object
) -> None:
    import random
    import string

    world = await build_world()
    await add_proposal(world.table_a)
    cache.pages.size = 64  # the same bound as ENTRIES, reached sooner
    try:
        rng = random.Random(15)  # noqa: S311 — reproducible, not secret
        for _ in range(200):
            q = "".join(rng.choices(string.ascii_letters + "éàç ", k=100))
            page = rng.randint(1, 99_999)
            response = await client.get(
                TABLE_A,
                params={"q": q, "page": str(page)},
                headers={"HX-Request": "true", "HX-Target": "proposals"},
            )
            assert response.status_code == 200
        assert len(cache.pages._entries) <= 64
    finally:
        cache.pages.size = cache.ENTRIES


# What the cache.py module promises: "at most ~20 MB of pages per process".
PROMISED_BYTES = 20 * 1024 * 1024


async def test_kept_pages_stay_within_their_promised_bytes(
    client: AsyncClient, app: object
) -> None:
    """The cache counts entries, not bytes, and an entry holds a proposal's whole discussion.
    Residents comment on one proposal, anyone reads it after each comment: each comment moves
    the revision, so each reading keeps the whole thread again, twice (the rows in
    `_public_part`, the rendered discussion in the template's "comments" part), and the earlier
    copies stay (expired or not) until 1024 entries push them out."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    author = world.users["resident_a"]
    body = "Un long témoignage sur les ascenseurs en panne. " * 40  # 2000 characters: the most
    body = body[:2000]
    await Comment.insert(
        *[Comment(proposal=proposal, author=author, body=body) for _ in range(100)]
    )
    for _ in range(120):
        await Comment.insert(Comment(proposal=proposal, author=author, body=body))
        assert (await client.get(f"/proposals/{proposal}")).status_code == 200
    by_kind: dict[str, list[int]] = {}
    for key, value in kept_entries():
        by_kind.setdefault(str(key[0]) if key[0] != "fragment" else str(key[2]), []).append(
            deep_size(value)
        )
    sizes = [size for kind in by_kind.values() for size in kind]
    total = sum(sizes)
    for kind, kept in by_kind.items():
        print(f"\n{kind}: {len(kept)} entries, largest {max(kept)} B, total {sum(kept)} B")
    largest = max(by_kind["proposal"])
    print(f"1024 x largest proposal entry = {1024 * largest / 2**20:.0f} MiB")
    assert total <= PROMISED_BYTES, f"{total / 2**20:.1f} MiB kept for {len(sizes)} entries"


def fill_with_copies_of(kind: str) -> int:
    """Bytes the cache holds once as many entries like the first kept `kind` as other readers,
    languages, filters and revisions would make are put in it (each counted whole, as each
    would be rendered anew)."""
    key, value = next((k, v) for k, v in kept_entries() if k[0] == kind)
    for n in range(cache.ENTRIES):
        cache.pages.put((*key, "copy", n), value)
    return sum(deep_size(v) for _, v in kept_entries())


async def test_a_list_entry_is_small_whatever_is_searched(client: AsyncClient, app: object) -> None:
    """A list page keeps one rendered page of 20 at most: titles of 140 characters and
    names of 80 at the most (in Arabic: two bytes a character). A cache full of them stays
    within the promised 20 MB?"""
    world = await build_world()
    author = await add_user("auteur", "N" * 80)
    await seat(author, world.table_a)
    for n in range(25):
        await add_proposal(world.table_a, f"{n:03d} " + "ب" * 136, author=author)
    await client.get(TABLE_A)
    await client.get(f"{TABLE_A}?q=" + "ب" * 100)
    sizes = {key[0]: deep_size(value) for key, value in kept_entries()}
    print(f"\nkept entries and their sizes: {sizes}")
    assert fill_with_copies_of("table-list") <= PROMISED_BYTES


async def test_a_tables_side_entry_with_every_proposal_on_its_map(
    client: AsyncClient, app: object
) -> None:
    """The side keeps the static map of every placed proposal of the table: its size grows with
    the table, unbounded. A cache full of them (tables, languages, revisions) within 20 MB?"""
    from tests.factories import FLAMANTS_SQUARE, draw_district

    world = await build_world()
    district = await draw_district(world.table_a, FLAMANTS_SQUARE)
    await Proposal.insert(
        *[
            Proposal(
                table=world.table_a["id"],
                title=f"Proposition placée {n}",
                body="Un texte assez long.",
                theme="housing",
                language="fr",
                latitude=43.326 + (n % 50) * 0.0001,
                longitude=5.406 + (n // 50) * 0.0001,
                district=district,
            )
            for n in range(1000)
        ]
    )
    await client.get(TABLE_A)
    sizes = {key[0]: deep_size(value) for key, value in kept_entries()}
    print(f"\nkept entries and their sizes with 1000 placed proposals: {sizes}")
    assert fill_with_copies_of("table-side") <= PROMISED_BYTES


async def test_expired_entries_do_not_stay_in_memory() -> None:
    """An entry past its time is never served again: it should not hold memory until 1024
    others push it out."""
    kept = cache.Cache(size=8)
    kept.put(("big", 1), "x" * 1_000_000, seconds=0.0)
    await asyncio.sleep(0.01)
    assert kept.get(("big", 1)) is None
    kept.put(("small", 1), "y")
    assert len(kept._entries) == 1


# --- SQLite's shared read connection ---------------------------------------------------------


async def test_a_write_is_read_at_once_by_the_next_request(
    client: AsyncClient, app: object
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Un banc devant l'école")
    await sign_in(client, world.users["resident_a"])
    assert "Première réaction" not in (await client.get(f"/proposals/{proposal}")).text
    for n in range(5):
        answered = await post_form(
            client,
            f"/proposals/{proposal}/comments",
            {"body": f"Réaction numéro {n}"},
            follow_redirects=True,
        )
        assert f"Réaction numéro {n}" in answered.text  # the redirect's page, read at once
        supported = await post_form(
            client,
            f"/proposals/{proposal}/support",
            {"action": "withdraw"} if n % 2 else {},
            follow_redirects=True,
        )
        count = t("%(num)d support") if n % 2 == 0 else "0"
        assert supported.status_code == 200
        listing = text_of((await client.get(TABLE_A)).text)
        assert ("1 soutien" in listing) == (n % 2 == 0), (n, count)


async def test_reads_go_on_while_a_long_write_transaction_is_open(
    client: AsyncClient, app: object
) -> None:
    """A writer holding its transaction (a vote being counted, an import) neither holds readers
    up nor shows them what it has not committed; once committed, the next read sees it."""
    world = await build_world()
    await add_proposal(world.table_a, "Déjà là")
    await client.get(TABLE_A)
    inside = asyncio.Event()
    release = asyncio.Event()

    async def long_write() -> None:
        async with db.write_transaction():
            await add_proposal(world.table_a, "Pas encore validée")
            inside.set()
            await release.wait()

    writer = asyncio.create_task(long_write())
    await asyncio.wait_for(inside.wait(), 10)
    started = asyncio.get_running_loop().time()
    during = await asyncio.wait_for(client.get(TABLE_A), 10)
    elapsed = asyncio.get_running_loop().time() - started
    assert "Déjà là" in during.text
    assert "Pas encore validée" not in during.text
    assert elapsed < 2.0
    release.set()
    await writer
    assert "Pas encore validée" in (await client.get(TABLE_A)).text


async def test_a_failed_write_leaves_reads_right(client: AsyncClient, app: object) -> None:
    world = await build_world()
    await client.get(TABLE_A)

    async def refused_write() -> None:
        async with db.write_transaction():
            await add_proposal(world.table_a, "Annulée avec sa transaction")
            # A second table with the same slug: the unique index refuses it.
            await Table.insert(
                Table(
                    slug="flamants-iris",
                    name="Double",
                    postcode="13014",
                    organisation=world.table_a["organisation"],
                )
            )

    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await refused_write()
    page = await client.get(TABLE_A)
    assert page.status_code == 200
    assert "Annulée avec sa transaction" not in page.text
    await add_proposal(world.table_a, "Écrite après l'échec")
    assert "Écrite après l&#39;échec" in (await client.get(TABLE_A)).text


async def test_one_failing_read_does_not_fail_the_reads_beside_it() -> None:
    """SQLite: reads share one connection per loop, and a read that fails closes it for the
    next to open again. Reads already on their way through it must still get their rows."""
    world = await build_world()
    await add_proposal(world.table_a)

    async def good() -> int:
        rows = await Proposal.select(Proposal.id, Proposal.title)
        return len(rows)

    async def bad() -> None:
        await Proposal.raw("SELECT * FROM no_such_table_here")

    await good()  # the shared connection is open
    results = await asyncio.gather(
        *(good() for _ in range(5)), bad(), *(good() for _ in range(5)), return_exceptions=True
    )
    failed_beside = [r for n, r in enumerate(results) if n != 5 and not isinstance(r, int)]
    assert isinstance(results[5], Exception)
    assert failed_beside == [], failed_beside
    assert await good() == 1


# --- Revisions of tables made again ----------------------------------------------------------


async def test_a_table_made_again_with_the_same_id_shows_nothing_of_the_old(
    client: AsyncClient, app: object
) -> None:
    old = await add_table("table-ephemere", "avec-nous")
    await add_proposal(old, "Proposition de l'ancienne table")
    for lang in ("fr", "ar"):
        assert "ancienne table" in (await client.get(f"/tables/table-ephemere?lang={lang}")).text
    await Proposal.delete().where(Proposal.table == old["id"])
    await TableDistrict.delete().where(TableDistrict.table == old["id"])
    await Table.delete().where(Table.id == old["id"])
    organisation = await one(Organisation.select(Organisation.id))
    await Table.insert(
        Table(
            id=old["id"],
            slug="table-ephemere",
            name="Table Ephemere",
            postcode="13014",
            organisation=organisation["id"],
        )
    )
    row = await one(Table.select(Table.revision).where(Table.id == old["id"]))
    assert row["revision"] != old["revision"]
    for lang in ("fr", "ar"):
        page = await client.get(f"/tables/table-ephemere?lang={lang}")
        assert "ancienne table" not in page.text, lang
        assert "Quartier table-ephemere" not in text_of(page.text), lang  # no district now


# --- Follow-up shown beside the proposals ----------------------------------------------------


async def overdue_world() -> Any:
    from tests.test_followup import sent_world

    return await sent_world(sent_at=datetime.now(UTC) - timedelta(days=100))


async def test_an_institution_renamed_is_renamed_in_the_answers_overdue(
    client: AsyncClient, app: object
) -> None:
    """A coordinator renames an institution (tables/institutions.change): `institution` moves
    no revision, so the table's kept side names it as before, up to 60 s."""
    sent = await overdue_world()
    assert "Logirem" in (await client.get(TABLE_A)).text
    await raw_write(
        "UPDATE institution SET name = ? WHERE id = ?", "Logirem Habitat", sent.institutions[1]
    )
    page = text_of((await client.get(TABLE_A)).text)
    assert "Logirem Habitat" in page


async def test_a_new_answer_delay_shows_in_the_answers_overdue(
    client: AsyncClient, app: object
) -> None:
    """The facilitators give institutions six months instead of two: sent 100 days ago, nobody
    is late any more; the table's row (its delay) moves no revision."""
    sent = await overdue_world()
    assert t("Answers overdue") in (await client.get(TABLE_A)).text
    await sign_in(client, sent.world.users["facilitator_a"])
    changed = await post_form(client, f"{TABLE_A}/follow-up/delay", {"answer_delay_months": "6"})
    assert changed.status_code == 303
    assert t("Answers overdue") not in (await client.get(TABLE_A)).text


# --- The browser's cache ----------------------------------------------------------------------


async def test_the_list_fragment_and_the_page_say_they_differ_by_htmx(
    client: AsyncClient, app: object
) -> None:
    """The table's address answers the whole page, or the list alone when htmx asks (and htmx
    pushes that address into the history). Without `Vary: HX-Request` a browser may show the
    fragment it kept for that address when Back or a reload asks for the page."""
    world = await build_world()
    await add_proposal(world.table_a)
    fragment = await client.get(
        f"{TABLE_A}?theme=housing", headers={"HX-Request": "true", "HX-Target": "proposals"}
    )
    assert "<html" not in fragment.text
    vary = {v.strip().lower() for v in fragment.headers.get("vary", "").split(",")}
    assert "hx-request" in vary


# --- Parts of pages kept by the templates (voix.fragments) ------------------------------------


def tokens_in(html: str) -> set[str]:
    return set(re.findall(r'name="_csrf_token" value="([^"]+)"', html))


async def test_a_kept_discussion_carries_each_readers_own_token(
    client: AsyncClient, app: object
) -> None:
    """Two residents of the table read the same kept discussion (the same key: signed in, may
    comment, not moderators): its reply and report forms carry each one's own CSRF token."""
    from tests.conftest import make_client

    world = await build_world()
    proposal = await add_proposal(world.table_a)
    other = await add_user("voisine", "Voisine")
    await seat(other, world.table_a)
    await Comment.insert(
        Comment(proposal=proposal, author=world.users["resident_a"], body="Premier avis")
    )
    await sign_in(client, world.users["resident_a"])
    mine = await csrf_token(client)
    first = await client.get(f"/proposals/{proposal}")
    assert t("Report") in first.text  # the kept part holds forms
    assert tokens_in(first.text) == {mine}
    async with make_client(app) as second_client:
        await sign_in(second_client, other)
        theirs = await csrf_token(second_client)
        assert theirs != mine
        hits = cache.pages.hits
        second = await second_client.get(f"/proposals/{proposal}")
        assert cache.pages.hits > hits  # served from what the first reading kept
        assert tokens_in(second.text) == {theirs}
        assert mine not in second.text
        # Their own comment, signed with their token, is accepted.
        answered = await post_form(
            second_client, f"/proposals/{proposal}/comments", {"body": "Deuxième avis"}
        )
        assert answered.status_code == 303


async def test_a_kept_discussion_never_shows_a_moderators_view_to_others(
    client: AsyncClient, app: object
) -> None:
    """The other way round from the first test: a resident keeps the discussion first, then a
    moderator must get the hidden comment and its button, and a resident still not."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await Comment.insert(
        Comment(
            proposal=proposal,
            author=world.users["resident_a"],
            body="Propos caché par les animatrices",
            hidden_at=datetime.now(UTC),
            hidden_reason="Insulte",
        )
    )
    await sign_in(client, world.users["resident_a"])
    assert "Propos caché" not in (await client.get(f"/proposals/{proposal}")).text
    for role in ("facilitator_a", "coordinator_a", "admin"):
        await sign_in(client, world.users[role])
        page = await client.get(f"/proposals/{proposal}")
        assert "Propos caché par les animatrices" in page.text, role
        assert 'value="show"' in page.text, role
    for role in ("resident_a", "facilitator_b", "outsider"):
        await sign_in(client, world.users[role])
        page = await client.get(f"/proposals/{proposal}")
        assert "Propos caché" not in page.text, role
        assert 'value="show"' not in page.text, role
    sign_out(client)
    assert "Propos caché" not in (await client.get(f"/proposals/{proposal}")).text


async def test_a_table_renamed_is_renamed_on_its_proposals_pages_and_home(
    client: AsyncClient, app: object
) -> None:
    """The proposal page's kept head names the table; the table's own row moves no revision
    (the table's page keys its side on the name too; the head does not)."""
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    assert "Flamants Iris" in (await client.get(f"/proposals/{proposal}")).text
    assert "Flamants Iris" in (await client.get("/")).text
    await raw_write(
        "UPDATE neighbourhood_table SET name = ? WHERE id = ?",
        "Flamants et Iris",
        world.table_a["id"],
    )
    assert "Flamants et Iris" in (await client.get(f"/proposals/{proposal}")).text
    assert "Flamants et Iris" in (await client.get("/")).text  # the home page's kept list
