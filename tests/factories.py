"""Builds the people and places tests act on, through the project's own services."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from httpx import AsyncClient

from accounts.services import create_user, hash_password, open_session
from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory
from exports.services import get_brief, publish_version
from maps.models import District
from proposals.models import Proposal
from proposals.services import list_adopted
from tables.models import (
    FACILITATOR,
    RESIDENT,
    Coordinator,
    Institution,
    Membership,
    Organisation,
    Table,
    TableDistrict,
)
from tables.services import get_table
from voix.permissions import Principal
from voix.web import SESSION_COOKIE

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(PASSWORD)  # argon2 once per run, not once per user

ROLES = (
    "resident_a",
    "resident_b",
    "facilitator_a",
    "facilitator_b",
    "coordinator_a",
    "coordinator_b",
    "admin",
    "outsider",
)


@dataclass
class World:
    """Two organisations, each running one table, and one person in each role."""

    table_a: dict[str, Any]
    table_b: dict[str, Any]
    users: dict[str, int] = field(default_factory=dict)


async def add_user(login: str, name: str | None = None, is_admin: bool = False) -> int:
    user = await create_user(login, name or login.title(), _PASSWORD_HASH, is_admin=is_admin)
    return user.id


async def add_tables(n: int, description: str) -> None:
    """n tables of the first organisation, in one statement (`table-0` … `table-{n-1}`)."""
    organisation = await Organisation.select(Organisation.id).first()
    await Table.insert(
        *[
            Table(
                slug=f"table-{i}",
                name=f"Table de quartier numéro {i}",
                postcode="13015",
                description=f"{description} {i}",
                organisation=organisation["id"],
            )
            for i in range(n)
        ]
    )


async def add_table(slug: str, organisation_slug: str) -> dict[str, Any]:
    organisation = (
        await Organisation.select(Organisation.id)
        .where(Organisation.slug == organisation_slug)
        .first()
    )
    if organisation is None:
        rows = await Organisation.insert(
            Organisation(slug=organisation_slug, name=organisation_slug.replace("-", " ").title())
        ).returning(Organisation.id)
        organisation = rows[0]
    table = await Table.insert(
        Table(
            slug=slug,
            name=slug.replace("-", " ").title(),
            postcode="13014",
            organisation=organisation["id"],
        )
    ).returning(Table.id)
    district = await District.insert(
        District(
            slug=slug,
            name=f"Quartier {slug}",
            postcode="13014",
            boundary={"type": "Polygon", "coordinates": []},
        )
    ).returning(District.id)
    await TableDistrict.insert(TableDistrict(table=table[0]["id"], district=district[0]["id"]))
    return await get_table(slug)


# A small square around the Flamants, as GeoJSON (longitude, latitude).
FLAMANTS_SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[5.405, 43.325], [5.415, 43.325], [5.415, 43.333], [5.405, 43.333], [5.405, 43.325]]
    ],
}


async def draw_district(table: dict[str, Any], boundary: dict[str, Any], **fields: Any) -> int:
    """Gives the table's district a real boundary (and other fields); returns the district id."""
    link = (
        await TableDistrict.select(TableDistrict.district)
        .where(TableDistrict.table == table["id"])
        .first()
    )
    await District.update({District.boundary: boundary, **fields}).where(
        District.id == link["district"]
    )
    return int(link["district"])


async def seat(user_id: int, table: dict[str, Any], role: str = RESIDENT) -> None:
    await Membership.insert(Membership(user=user_id, table=table["id"], role=role))


async def build_world() -> World:
    world = World(
        table_a=await add_table("flamants-iris", "avec-nous"),
        table_b=await add_table("les-aygalades", "collectif-des-femmes"),
    )
    for role in ROLES:
        world.users[role] = await add_user(role.replace("_", "-"), is_admin=role == "admin")
    await seat(world.users["resident_a"], world.table_a)
    await seat(world.users["resident_b"], world.table_b)
    await seat(world.users["facilitator_a"], world.table_a, FACILITATOR)
    await seat(world.users["facilitator_b"], world.table_b, FACILITATOR)
    for role, table in (("coordinator_a", world.table_a), ("coordinator_b", world.table_b)):
        await Coordinator.insert(
            Coordinator(user=world.users[role], organisation=table["organisation"])
        )
    return world


async def add_proposal(
    table: dict[str, Any], title: str = "Réparer les ascenseurs", **fields: Any
) -> int:
    values = {
        "body": "Les ascenseurs tombent en panne chaque semaine.",
        "theme": "housing",
        "language": "fr",
        **fields,
    }
    rows = await Proposal.insert(Proposal(table=table["id"], title=title, **values)).returning(
        Proposal.id
    )
    return int(rows[0]["id"])


async def add_institution(table: dict[str, Any], name: str, service: str = "") -> int:
    """One of the organisation's addressees (the one running `table`)."""
    found = await (
        Institution.select(Institution.id)
        .where(
            (Institution.organisation == table["organisation"])
            & (Institution.name == name)
            & (Institution.service == service)
        )
        .first()
    )
    if found:
        return int(found["id"])
    rows = await Institution.insert(
        Institution(organisation=table["organisation"], name=name, service=service)
    ).returning(Institution.id)
    return int(rows[0]["id"])


async def add_draft(
    table: dict[str, Any],
    title: str = "Rénovation des Flamants : nos priorités",
    *,
    slug: str | None = None,
    introduction: str = "La table a débattu puis voté ces propositions.",
    addressees: tuple[str, ...] = ("Conseil citoyen du 14e",),
    proposals: list[int] | None = None,
    language: str = "fr",
    signatories: tuple[str, ...] = ("Avec Nous",),
) -> dict[str, Any]:
    """A brief's draft as the composer saves it: `proposals` (default: every adopted one of the
    table, in their order), addressed to these institutions, signed by these organisations."""

    if proposals is None:
        proposals = [row["id"] for row in await list_adopted(table["id"])]
    slug = slug or f"brief-{await Brief.count() + 1}"
    rows = await Brief.insert(
        Brief(
            slug=slug,
            table=table["id"],
            title=title,
            addressed_to="",
            introduction=introduction,
            language=language,
        )
    ).returning(Brief.id)
    brief_id = rows[0]["id"]
    if proposals:
        await BriefItem.insert(
            *[
                BriefItem(brief=brief_id, proposal=proposal, position=n)
                for n, proposal in enumerate(proposals, start=1)
            ]
        )
    for n, name in enumerate(addressees, start=1):
        institution = await add_institution(table, name)
        await BriefAddressee.insert(
            BriefAddressee(brief=brief_id, institution=institution, position=n)
        )
    for n, name in enumerate(signatories, start=1):
        await BriefSignatory.insert(BriefSignatory(brief=brief_id, position=n, name=name))
    return await get_brief(slug)


async def publish_brief(table: dict[str, Any], facilitator: int, **draft: Any) -> str:
    """A draft (add_draft) published as its version 1 by the table's facilitator; its slug."""
    brief = await add_draft(table, **draft)
    who = Principal(user_id=facilitator, table_roles={table["id"]: FACILITATOR}, verified=True)
    await publish_version(who, brief)
    return str(brief["slug"])


async def sign_in(client: AsyncClient, user_id: int, verified: bool = True) -> None:
    """A session as after sign-in; `verified` as after the TOTP step (tests of that step say no)."""
    client.cookies.set(SESSION_COOKIE, await open_session(user_id, verified=verified))


def sign_out(client: AsyncClient) -> None:
    client.cookies.delete(SESSION_COOKIE)


async def csrf_token(client: AsyncClient) -> str:
    if "csrftoken" not in client.cookies:
        await client.get("/login")
    return str(client.cookies["csrftoken"])


async def post_form(client: AsyncClient, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """Posts a form as a browser does: with the CSRF token of the page it came from."""
    return await client.post(url, data={**data, "_csrf_token": await csrf_token(client)}, **kwargs)


def t(msgid: str, lang: str = "fr", **params: Any) -> str:
    """The message as the catalog of `lang` renders it, HTML-escaped as pages show it."""
    from markupsafe import escape  # as Jinja escapes, so it matches the page byte for byte

    from voix.i18n import catalog

    text = catalog(lang).gettext(msgid)
    return str(escape(text % params if params else text))


def run_voix(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `voix` command as a user runs it, in a process of its own, on the test database."""
    from voix.settings import PROJECT_ROOT

    return subprocess.run(
        [sys.executable, "-m", "voix.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )


async def register_card_resident(
    manager: Any, table: dict[str, Any], name: str = "Fatou"
) -> tuple[int, str]:
    """A resident registered in person (no password); returns (user id, the card's code)."""
    from accounts import cards

    printed: list[str] = []

    async def keep_code(code: str, _name: str, _language: str) -> bytes:
        printed.append(code)
        return b""

    user_id, _ = await cards.register_resident(
        manager, table, {"display_name": name, "language": "fr", "consent": "yes"}, keep_code
    )
    return user_id, printed[0]
