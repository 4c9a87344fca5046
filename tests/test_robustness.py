"""Odd requests get clear refusals, never a crash (found in review, kept fixed here)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from httpx import AsyncClient

from maps.models import Place
from proposals.models import Proposal
from tables.models import Membership
from tests.factories import (
    FLAMANTS_SQUARE,
    add_proposal,
    add_table,
    build_world,
    draw_district,
    post_form,
    sign_in,
    t,
)


@pytest.mark.parametrize(
    "url",
    [
        "/votes/2147483648",
        "/votes/99999999999999999999",
        "/proposals/9223372036854775808",
        "/api/v1/votes/2147483648",
        "/votes/0",
        "/tables/%00",
        "/briefs/a%00b",
        "/api/v1/tables/%00/proposals",
        "/tables/UPPER",
    ],
)
async def test_out_of_range_ids_and_odd_slugs_are_refused_cleanly(
    client: AsyncClient, url: str
) -> None:
    response = await client.get(url)
    assert response.status_code in (400, 404), response.text[:300]


async def test_nul_bytes_in_a_login_are_a_wrong_login(client: AsyncClient) -> None:
    await build_world()
    response = await post_form(client, "/login", {"login": "resident-a\x00", "password": "x" * 10})
    assert response.status_code == 400
    assert t("This login and password do not match.") in response.text


async def test_on_behalf_of_an_absurd_person_id_is_a_form_error(client: AsyncClient) -> None:
    world = await build_world()
    await sign_in(client, world.users["facilitator_a"])
    data = {
        "title": "Des bancs devant l'école",
        "body": "Les parents attendent debout.",
        "theme": "public_space",
        "author": "999999999999",
    }
    response = await post_form(client, "/tables/flamants-iris/proposals", data)
    assert response.status_code == 400
    assert await Proposal.count() == 0


async def test_csrf_protection_holds_whatever_the_slug_contains(client: AsyncClient) -> None:
    """The exclusions for /api and /schema once matched anywhere in a path."""
    world = await build_world()
    await add_table("schema-saint-louis", "avec-nous")
    await add_table("api-campagne", "avec-nous")
    await sign_in(client, world.users["outsider"])
    await client.get("/login")
    for slug in ("schema-saint-louis", "api-campagne"):
        response = await client.post(f"/tables/{slug}/join", data={})
        assert response.status_code == 403, slug
    assert not await Membership.exists().where(Membership.user == world.users["outsider"])


async def test_language_links_stay_on_this_site(client: AsyncClient) -> None:
    response = await client.get("//evil.example/phish")
    assert "//evil.example" not in response.text
    page = await client.get("/login?next=/x")
    assert 'href="?next=%2Fx&amp;lang=ar"' in page.text


async def test_anonymous_form_posts_say_to_sign_in(client: AsyncClient) -> None:
    await build_world()
    response = await post_form(client, "/tables/flamants-iris/join", {})
    assert response.status_code == 401
    assert t("Please sign in first.") in response.text


# Numbers in requests: "²".isdigit() is true but int("²") fails, int("٣") is 3; all refused.

ODD_NUMBERS = ["²", "٣", "9" * 40, "2147483648", "-1", "1_0"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12),
        ("0012", 12),
        ("1", 1),
        ("99999", 99_999),
        ("100000", None),  # above max
        ("0", None),  # below min
        *((odd, None) for odd in ODD_NUMBERS),
        (" 1", None),  # forms strip their fields first; a query string is taken as it comes
        ("", None),
        (None, None),
        (["3"], None),
    ],
)
def test_parse_int_reads_ascii_digits_within_bounds_only(raw: object, expected: int | None) -> None:
    from voix.forms import parse_int

    assert parse_int(raw, min=1, max=99_999) == expected


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/tables/flamants-iris", "page"),
        ("/tables/flamants-iris/map", "page"),
        ("/map", "page"),
        ("/meetings/{meeting}/minutes", "version"),
        ("/meetings/{meeting}/minutes.pdf", "version"),
    ],
)
async def test_odd_numbers_in_query_strings_fall_back_to_the_default(
    client: AsyncClient, path: str, name: str
) -> None:
    """Anonymous readers: the first page, the latest version of the minutes."""
    world = await build_world()
    await add_proposal(world.table_a, "Réparer les ascenseurs de la tour G")
    meeting = await published_minutes(world)
    for raw in ODD_NUMBERS:
        response = await client.get(path.format(meeting=meeting), params={name: raw})
        assert response.status_code == 200, (raw, response.text[:300])
        if path.endswith("/minutes"):
            assert "Le compte rendu de la séance" in response.text, raw
        elif path == "/tables/flamants-iris":
            assert "tour G" in response.text, raw


async def _meeting(world, days_from_now: int, status: str = "scheduled") -> int:
    from datetime import UTC, datetime, timedelta

    from meetings.models import Meeting

    starts = datetime.now(UTC) + timedelta(days=days_from_now)
    rows = await Meeting.insert(
        Meeting(
            table=world.table_a["id"],
            title="Réunion de la table",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            place="Centre social",
            address="Marseille",
            languages="fr",
            status=status,
        )
    ).returning(Meeting.id)
    return int(rows[0]["id"])


async def published_minutes(world) -> int:
    from datetime import UTC, datetime

    from meetings.models import Minutes

    meeting_id = await _meeting(world, days_from_now=-2, status="closed")
    now = datetime.now(UTC)
    await Minutes.insert(
        Minutes(
            meeting=meeting_id,
            version=1,
            body="Le compte rendu de la séance.",
            published=True,
            updated_at=now,
            published_at=now,
        )
    )
    return meeting_id


async def open_meeting(world) -> int:
    return await _meeting(world, days_from_now=2)


NEW_PROPOSAL = {
    "title": "Des bancs devant l'école",
    "body": "Les parents attendent debout.",
    "theme": "school",
}
# Every form field read as a number: who posts it, where, what else the form holds.
NUMBER_FIELDS = [
    ("resident_a", "/proposals/{proposal}/comments", {"body": "Bonne idée"}, "parent"),
    ("resident_a", "/proposals/{proposal}/report", {"reason": "insultes"}, "comment"),
    ("facilitator_a", "/proposals/{proposal}/moderation", {"reason": "Hors sujet"}, "comment"),
    ("facilitator_a", "/proposals/{proposal}/merge", {}, "into"),
    (
        "facilitator_a",
        "/tables/flamants-iris/proposals",
        {**NEW_PROPOSAL, "consent": "yes"},
        "author",
    ),
    ("facilitator_a", "/tables/flamants-iris/proposals", NEW_PROPOSAL, "place"),
    ("facilitator_a", "/meetings/{meeting}/agenda", {"title": "Un point"}, "proposal"),
    ("facilitator_a", "/meetings/{meeting}/agenda", {"title": "Un point"}, "vote"),
]


@pytest.mark.parametrize(("role", "path", "data", "field"), NUMBER_FIELDS)
async def test_odd_numbers_in_form_fields_are_explained_refusals(
    client: AsyncClient, role: str, path: str, data: dict, field: str
) -> None:
    from meetings.models import AgendaItem
    from proposals.models import Comment, Report

    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await add_proposal(world.table_a, "Une autre idée")
    meeting = await open_meeting(world)
    district = await draw_district(world.table_a, FLAMANTS_SQUARE)  # the place field shows
    await Place.insert(Place(district=district, name="Tour G", latitude=43.329, longitude=5.41))
    await sign_in(client, world.users[role])
    url = path.format(proposal=proposal, meeting=meeting)
    for raw in ODD_NUMBERS:
        response = await post_form(client, url, {**data, field: raw})
        assert response.status_code == 400, (raw, response.text[:300])
        assert t("Please choose one of the options offered.") in response.text, raw
    assert await Proposal.count() == 2
    assert await Comment.count() == 0
    assert await Report.count() == 0
    assert await AgendaItem.count() == 0
    assert not await Proposal.exists().where(Proposal.hidden_at.is_not_null())


async def test_odd_numbers_among_the_minutes_links_are_left_out(client: AsyncClient) -> None:
    from meetings.models import MinutesLink

    world = await build_world()
    proposal = await add_proposal(world.table_a)
    meeting = await open_meeting(world)
    await sign_in(client, world.users["facilitator_a"])
    response = await post_form(
        client,
        f"/meetings/{meeting}/minutes",
        {"body": "Compte rendu", "action": "save", "proposals": [*ODD_NUMBERS, str(proposal)]},
    )
    assert response.status_code == 303, response.text[:300]
    links = await MinutesLink.select(MinutesLink.proposal)
    assert links == [{"proposal": proposal}]


@pytest.mark.parametrize("typed", ["12345²", "²²²²²²", "1234567", "12 34 5"])
def test_totp_codes_with_odd_digits_are_wrong_codes_not_crashes(typed: str) -> None:
    from accounts.totp import generate_totp_secret, verify_totp_code

    assert verify_totp_code(generate_totp_secret(), typed, None) is None


def test_a_code_typed_on_an_arabic_keyboard_is_the_same_code() -> None:
    import pyotp

    from accounts.totp import generate_totp_secret, verify_totp_code

    secret = generate_totp_secret()
    code = pyotp.TOTP(secret).now()
    arabic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert verify_totp_code(secret, arabic, None) is not None
    assert verify_totp_code(secret, persian, None) is not None


# Bidirectional controls: "Admin\u202etxt.exe" would print as "Adminexe.txt".

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
BIDI_MARKS = "\u200e\u200f\u061c"


@pytest.mark.parametrize("char", list(BIDI_CONTROLS + BIDI_MARKS))
def test_single_line_text_loses_every_bidi_control_and_mark(char: str) -> None:
    from voix.forms import clean_text

    assert clean_text(f"Admin{char}txt.exe") == "Admintxt.exe"
    assert clean_text(f"{char} Tour G {char}") == "Tour G"


@pytest.mark.parametrize("char", list(BIDI_CONTROLS))
def test_multiline_text_loses_overrides_and_isolates(char: str) -> None:
    from voix.forms import clean_text

    assert clean_text(f"Bonjour{char}\n\nمرحبا {char}txt", multiline=True) == "Bonjour\n\nمرحبا txt"


@pytest.mark.parametrize("char", list(BIDI_MARKS))
def test_multiline_text_keeps_the_marks_that_place_punctuation(char: str) -> None:
    from voix.forms import clean_text

    text = f"الموعد يوم 12 مايو{char}.\nLe rendez-vous : 12 mai."
    assert clean_text(text, multiline=True) == text


async def test_cli_user_names_are_cleaned_as_on_the_site() -> None:
    from accounts.models import User
    from tests.factories import run_voix

    result = run_voix(
        "user",
        "add",
        "admin@avec-nous.example",
        "--name",
        "Admin\u202etxt.exe\u200f",
        "--role",
        "admin",
        stdin="a long enough password\n",
    )
    assert result.returncode == 0, result.stderr
    user = await User.select(User.display_name).first()
    assert user["display_name"] == "Admintxt.exe"


ODD_SPELLINGS = {
    "arabic-indic": lambda n: str(n).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    "full-width": lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    "plus": lambda n: f"+{n}",
    "space before": lambda n: f"%20{n}",
    "space after": lambda n: f"{n}%20",
    "leading zeros": lambda n: f"000{n}",
    "underscore": lambda n: "_".join(str(n)),
}


@pytest.mark.parametrize("spelling", ODD_SPELLINGS)
async def test_an_object_has_one_address_in_plain_digits(
    client: AsyncClient, spelling: str
) -> None:
    """int() reads "١٢", "１２", "+12", " 12", "0012" and "1_2": without the app-wide check a
    proposal answered at each of these addresses."""
    world = await build_world()
    for _ in range(12):  # an id of two digits or more, so "1_2" is a spelling of it
        proposal = await add_proposal(world.table_a, "Un banc devant l’école")
    assert (await client.get(f"/proposals/{proposal}")).status_code == 200
    odd = quote(ODD_SPELLINGS[spelling](proposal), safe="%+_")
    response = await client.get(f"/proposals/{odd}")
    assert response.status_code == 404
    assert t("This page does not exist, or no longer exists.") in response.text
