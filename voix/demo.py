"""Demo data: the real tables of the Quartiers Nord, with invented residents and ideas.

District boundaries here are rough hexagons around each district's centre: they say so
(`approximate`), and `voix districts import` replaces them with the official contours.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, time, timedelta

from accounts.cards import CARD, new_card_code
from accounts.models import LoginCard, User
from accounts.services import create_user, hash_password, hash_password_async
from audit import services as audit
from audit.models import AuditEntry
from exports import services as briefs
from exports.models import Brief, BriefAddressee, BriefItem, BriefSignatory
from followup.models import Response, ResponseItem
from maps.models import District, Place
from meetings import room
from meetings.models import (
    BY_LIST,
    BY_QR,
    WALK_IN,
    AgendaItem,
    Attendance,
    Meeting,
    Minutes,
    MinutesLink,
    RoomCount,
    RoomCountEntry,
)
from meetings.models import CLOSED as CLOSED_MEETING
from meetings.models import SCHEDULED as SCHEDULED_MEETING
from notifications import services as notify
from proposals.models import (
    ADOPTED,
    ANSWERED,
    SUBMITTED,
    TRANSMITTED,
    VOTING,
    Proposal,
    StatusChange,
)
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
from tables.services import get_table_by_id, scope_of
from translations import services as content
from voix import crypto, db, i18n
from voix.forms import Form, ascii_slug
from voix.permissions import Principal
from votes import box, closing
from votes import services as votes
from votes.models import ONLINE, TABLET, Decision, Participation, Vote, VoteOption

# Public demo TOTP secrets for those who manage tables (enter them in an authenticator app).
DEMO_TOTP_SECRETS = {
    "coordination@avec-nous.example": "GTP353YLV43OP3ZFDHJW2T6F3LQ5EWWQ",
    "coordination@collectif-des-femmes.example": "CPNFEF36EXI723BBUTGKDDCB6RUY2G25",
    "animation.flamants@avec-nous.example": "DHI36QN5TTI5IUTQQXJORXRUM4U2PTVL",
    "animation.aygalades@collectif-des-femmes.example": "EGVGHFCTJ74DURJFPQKQF5HCINM4TFPO",
}
DEMO_PASSWORD = "quartiers-nord-2026"  # noqa: S105 - the demo's, printed for everyone

ORGANISATIONS = {
    "avec-nous": "Avec Nous",
    "collectif-des-femmes": "Collectif des femmes des quartiers populaires",
}

# slug, name, postcode, organisation, (latitude, longitude) of the district's centre
TABLES = [
    ("flamants-iris", "Les Flamants-Iris", "13014", "avec-nous", (43.3369, 5.4105)),
    ("picon-busserine", "Picon/Busserine", "13014", "avec-nous", (43.3318, 5.4012)),
    (
        "saint-barthelemy-iii",
        "Saint-Barthélémy III",
        "13014",
        "collectif-des-femmes",
        (43.3392, 5.4031),
    ),
    ("cite-sncf", "Cité SNCF", "13014", "collectif-des-femmes", (43.3352, 5.3968)),
    ("campagne-leveque", "Campagne-Lévêque", "13015", "avec-nous", (43.3606, 5.3686)),
    ("les-aygalades", "Les Aygalades", "13015", "collectif-des-femmes", (43.3586, 5.3768)),
]

# login, display name, e-mail, role, table or organisation
PEOPLE = [
    (
        "coordination@avec-nous.example",
        "Leïla (coordination Avec Nous)",
        True,
        "coordinator",
        "avec-nous",
    ),
    (
        "coordination@collectif-des-femmes.example",
        "Fatima (coordination Collectif)",
        True,
        "coordinator",
        "collectif-des-femmes",
    ),
    (
        "animation.flamants@avec-nous.example",
        "Mehdi (adulte relais)",
        True,
        FACILITATOR,
        "flamants-iris",
    ),
    (
        "animation.aygalades@collectif-des-femmes.example",
        "Sonia (adulte relais)",
        True,
        FACILITATOR,
        "les-aygalades",
    ),
    ("samira", "Samira", False, RESIDENT, "flamants-iris"),
    ("karim", "Karim", False, RESIDENT, "flamants-iris"),
    ("nadia", "Nadia B.", False, RESIDENT, "flamants-iris"),
    ("youssef", "يوسف", False, RESIDENT, "flamants-iris"),
    ("josiane", "Josiane", False, RESIDENT, "flamants-iris"),
    ("amina", "Amina", False, RESIDENT, "les-aygalades"),
]

# table, author login (None: recorded on behalf of a resident without account), theme, lang, title, body
PROPOSALS = [
    (
        "flamants-iris",
        "samira",
        "housing",
        "fr",
        "Réparer les ascenseurs de la tour G avant l'hiver",
        "Depuis six mois l'ascenseur du bâtiment G tombe en panne chaque semaine. Les personnes âgées et les "
        "mamans avec poussette restent bloquées. Nous demandons au bailleur un contrat de maintenance avec "
        "intervention sous 48 heures et un affichage des pannes dans le hall.",
    ),
    (
        "flamants-iris",
        "karim",
        "public_space",
        "fr",
        "Éclairer le chemin entre l'école et l'arrêt de bus",
        "Le passage derrière le groupe scolaire est plongé dans le noir dès 17 heures en hiver. Des "
        "lampadaires et une haie taillée rendraient le trajet des enfants plus sûr.",
    ),
    (
        "flamants-iris",
        "nadia",
        "youth",
        "fr",
        "Un local pour les jeunes ouvert le soir et le week-end",
        "Les jeunes du quartier n'ont aucun lieu à eux après 18 heures. Nous proposons d'ouvrir l'ancien local "
        "commercial en pied d'immeuble, avec un animateur, pour le soutien scolaire et les projets.",
    ),
    (
        "flamants-iris",
        "youssef",
        "cleanliness",
        "ar",
        "حاويات نفايات إضافية قرب السوق",
        "الحاويات الموجودة تمتلئ بسرعة يوم السوق والنفايات تبقى على الأرض. نطلب حاويات إضافية وجمعًا مساء يوم السوق.",
    ),
    (
        "flamants-iris",
        None,
        "health",
        "ar",
        "طبيب عام في المركز الاجتماعي مرتين في الأسبوع",
        "أقرب طبيب بعيد والمواعيد صعبة. حضور طبيب عام في المركز الاجتماعي مرتين في الأسبوع يساعد كبار السن والعائلات.",
    ),
    (
        "flamants-iris",
        "josiane",
        "transport",
        "fr",
        "Un bus toutes les 10 minutes aux heures de pointe",
        "La ligne qui dessert le quartier passe toutes les 25 minutes le matin. Les habitant·e·s arrivent en "
        "retard au travail et au lycée. Nous demandons à la Métropole de renforcer la fréquence.",
    ),
    (
        "picon-busserine",
        None,
        "school",
        "fr",
        "Rénover la cour de l'école élémentaire",
        "Le sol de la cour est fissuré et il n'y a pas d'ombre. Des arbres et un revêtement neuf.",
    ),
    (
        "picon-busserine",
        None,
        "culture_sport",
        "fr",
        "Rouvrir le city-stade avec des horaires pour les filles",
        "Le terrain est fermé depuis l'incendie. À sa réouverture, des créneaux réservés aux filles.",
    ),
    (
        "saint-barthelemy-iii",
        None,
        "safety",
        "fr",
        "Sécuriser la traversée devant le collège",
        "Un plateau ralentisseur et un passage piéton éclairé devant l'entrée du collège.",
    ),
    (
        "cite-sncf",
        None,
        "shops",
        "fr",
        "Un marché de producteurs le samedi matin",
        "Faire venir des producteurs locaux une fois par semaine sur la place.",
    ),
    (
        "campagne-leveque",
        None,
        "housing",
        "fr",
        "Associer les locataires au projet de rénovation",
        "Des réunions avec le bailleur avant chaque étape des travaux, dans les langues du quartier.",
    ),
    (
        "les-aygalades",
        "amina",
        "public_space",
        "fr",
        "Des bancs et de l'ombre le long du ruisseau",
        "Le bord des Aygalades pourrait devenir une promenade : bancs, arbres, poubelles.",
    ),
    (
        "les-aygalades",
        None,
        "school",
        "ar",
        "دروس دعم مدرسي مجانية بعد المدرسة",
        "كثير من الأطفال يحتاجون مساعدة في الواجبات. نقترح دروس دعم مجانية في المكتبة بعد المدرسة.",
    ),
    # Six proposals the Flamants table ranked by majority judgment (PRIORITY_VOTE).
    (
        "flamants-iris",
        "josiane",
        "health",
        "fr",
        "Une permanence de médecin généraliste au centre social",
        "Le dernier médecin du quartier est parti à la retraite. Une permanence deux demi-journées par "
        "semaine au centre social éviterait aux anciens de prendre deux bus pour une consultation.",
    ),
    (
        "flamants-iris",
        "youssef",
        "school",
        "ar",
        "دروس دعم مدرسي مجانية بعد المدرسة",
        "نطلب دروس دعم مجانية في الرياضيات واللغة الفرنسية للتلاميذ بعد الساعة الرابعة والنصف، في قاعة "
        "الجمعية، مع مرافقين من الحي.",
    ),
    (
        "flamants-iris",
        "samira",
        "public_space",
        "fr",
        "Des bancs et de l'ombre sur la place centrale",
        "La place est un four en été. Des arbres, des bancs et une fontaine permettraient aux familles "
        "de s'y retrouver le soir.",
    ),
    (
        "flamants-iris",
        "karim",
        "transport",
        "fr",
        "Un abri et un banc à l'arrêt de bus Flamants",
        "On attend le bus sous la pluie et en plein soleil. Un abri avec un banc et l'affichage des "
        "horaires en temps réel.",
    ),
    (
        "flamants-iris",
        "nadia",
        "safety",
        "fr",
        "Sécuriser la traversée de l'avenue devant l'école",
        "Les voitures roulent vite devant l'école. Un passage surélevé et un feu pour les piétons aux "
        "heures d'entrée et de sortie.",
    ),
    (
        "flamants-iris",
        None,
        "housing",
        "fr",
        "Traiter les moisissures des appartements du bâtiment C",
        "Plusieurs familles du bâtiment C vivent avec des moisissures dans les chambres. Nous demandons "
        "un diagnostic et des travaux de ventilation.",
    ),
]


def approximate_boundary(latitude: float, longitude: float, radius_m: float = 380) -> dict:
    """A hexagon of about `radius_m` around the centre: for the demo, and said to be so."""
    points = []
    for k in range(7):
        angle = math.radians(60 * (k % 6) + 30)
        points.append(
            [
                round(
                    longitude
                    + radius_m * math.cos(angle) / (111_320 * math.cos(math.radians(latitude))),
                    6,
                ),
                round(latitude + radius_m * math.sin(angle) / 110_540, 6),
            ]
        )
    return {"type": "Polygon", "coordinates": [points]}


async def add_user(email: str, name: str, password: str, role: str, table_slug: str | None) -> int:
    """For `voix user add`: an account, and its seat at a table unless it is an admin."""
    form = Form({"name": name})  # cleaned as on the site: no control or bidi characters
    name = form.text("name", max_length=80)
    form.validate()
    table = None
    if role != "admin":
        if not table_slug:
            raise LookupError("--table is required for facilitators and residents.")
        table = await Table.select(Table.id).where(Table.slug == table_slug).first()
        if table is None:
            raise LookupError(f"No table with slug {table_slug!r}.")
    password_hash = await hash_password_async(password)
    async with db.write_transaction():
        user = await create_user(email, name, password_hash, email=email, is_admin=role == "admin")
        if table is not None:
            await Membership.insert(Membership(user=user.id, table=table["id"], role=role))
            await notify.follow(user.id, notify.TABLE, table["id"])
    return user.id


async def seed() -> bool:
    """Seeds the demo once; returns False when it is already there."""
    if await Organisation.exists().where(Organisation.slug == "avec-nous"):
        return False
    async with db.write_transaction():
        await _seed()
    await db.analyze()  # the planner's statistics, for the rows just added
    return True


async def _seed() -> None:
    organisations = {}
    for slug, name in ORGANISATIONS.items():
        rows = await Organisation.insert(Organisation(slug=slug, name=name)).returning(
            Organisation.id
        )
        organisations[slug] = rows[0]["id"]
    tables: dict[str, int] = {}
    places: dict[str, list[dict]] = {}
    for slug, name, postcode, organisation, (lat, lon) in TABLES:
        district = await District.insert(
            District(
                slug=slug,
                name=name,
                postcode=postcode,
                boundary=approximate_boundary(lat, lon),
                approximate=True,
                source="Voix des Quartiers demo: approximate boundary",
            )
        ).returning(District.id)
        table = await Table.insert(
            Table(
                slug=slug,
                name=name,
                postcode=postcode,
                organisation=organisations[organisation],
                description=f"Table de quartier {name} ({postcode}).",
            )
        ).returning(Table.id)
        tables[slug] = table[0]["id"]
        await TableDistrict.insert(TableDistrict(table=tables[slug], district=district[0]["id"]))
        places[slug] = []
        for place_name, (north, east) in PLACES.get(slug, DEFAULT_PLACES):
            row = await Place.insert(
                Place(
                    district=district[0]["id"],
                    name=place_name,
                    latitude=round(lat + north * 0.0009, 6),  # about 100 m a step
                    longitude=round(lon + east * 0.0012, 6),
                )
            ).returning(Place.id, Place.latitude, Place.longitude)
            places[slug].append({**row[0], "district": district[0]["id"]})

    password_hash = hash_password(DEMO_PASSWORD)
    joined = datetime.now(UTC) - timedelta(days=120)  # before any demo vote opened
    users = {}
    for login, name, has_email, role, place in PEOPLE:
        user = await create_user(
            login,
            name,
            password_hash,
            email=login if has_email else None,
            language="ar" if login == "youssef" else "fr",
        )
        users[login] = user.id
        if secret := DEMO_TOTP_SECRETS.get(login):
            await User.update(
                {User.totp_secret: crypto.encrypt(secret, "totp"), User.totp_enabled_at: joined}
            ).where(User.id == user.id)
        if role == "coordinator":
            await Coordinator.insert(Coordinator(user=user.id, organisation=organisations[place]))
        else:
            await Membership.insert(
                Membership(user=user.id, table=tables[place], role=role, created_at=joined)
            )

    facilitator = users["animation.flamants@avec-nous.example"]
    # Registered in person by the facilitator, with her consent: no password, a login card.
    fatima = await create_user("h-demo-fatima", "Fatima", "", language="ar")
    await User.update({User.consent_at: joined, User.consent_recorded_by: facilitator}).where(
        User.id == fatima.id
    )
    users["h-demo-fatima"] = fatima.id
    await Membership.insert(
        Membership(user=fatima.id, table=tables["flamants-iris"], role=RESIDENT, created_at=joined)
    )
    await LoginCard.insert(  # nobody knows its code: it was printed, and only its hash is kept
        LoginCard(
            user=fatima.id,
            code_hash=crypto.keyed_hash(new_card_code(), CARD),
            issued_by=facilitator,
            issued_at=joined,
        )
    )
    now = datetime.now(UTC)
    proposals = []
    for index, (table_slug, author, theme, lang, title, body) in enumerate(PROPOSALS):
        row = await Proposal.insert(
            Proposal(
                table=tables[table_slug],
                title=title,
                body=body,
                theme=theme,
                language=lang,
                status=SUBMITTED,
                author=users.get(author) if author else None,
                recorded_by=None
                if author
                else (facilitator if table_slug == "flamants-iris" else None),
                # The first two came early: adopted, then sent in the brief ten weeks ago.
                created_at=now - timedelta(days=110 - 2 * index if index < 2 else 40 - index),
                **_placed(places.get(table_slug, []), index),
            )
        ).returning(Proposal.id)
        proposals.append(row[0]["id"])

    flamants = tables["flamants-iris"]
    open_vote_id = await _seed_votes(tables["flamants-iris"], users, facilitator, proposals, joined)
    await _seed_meetings(tables, users, facilitator, proposals, open_vote_id)
    await _seed_room_vote(flamants, organisations["avec-nous"], users, proposals)
    await _seed_translations(tables["flamants-iris"], facilitator, open_vote_id)

    await _seed_brief(flamants, organisations, users, facilitator, proposals, now)
    await _seed_notifications(flamants, users, facilitator)


# How the Flamants residents hear of their table: (login, phone, e-mail, SMS, e-mail, digest).
# The numbers are fictitious (+33 6 00 00 00 xx); the SMS consents were recorded with them by
# the facilitator, at a meeting.
CHANNELS = [
    ("samira", "+33600000001", None, True, False, False),
    ("youssef", "+33600000002", None, True, False, False),  # in Arabic
    ("nadia", None, "nadia.b@example.org", False, True, False),
    ("josiane", None, "josiane@example.org", False, True, True),  # one e-mail a day
]


async def _seed_notifications(flamants: int, users: dict[str, int], facilitator: int) -> None:
    """Members follow their tables and authors their proposals (as joining and proposing do
    on the site); four Flamants residents chose SMS or e-mail; two answered for the next
    meeting, one through the facilitator."""
    for row in await Membership.select(Membership.user, Membership.table):
        await notify.follow(row["user"], notify.TABLE, row["table"])
    for row in await Proposal.select(Proposal.id, Proposal.author).where(
        Proposal.author.is_not_null()
    ):
        await notify.follow(row["author"], notify.PROPOSAL, row["id"])
    for login, phone, email, sms, by_email, digest in CHANNELS:
        user_id = users[login]
        await User.update({User.phone: phone, User.email: email}).where(User.id == user_id)
        await notify.set_channels(
            user_id,
            sms=sms,
            email=by_email,
            email_digest=digest,
            recorded_by=facilitator if sms else None,
        )
    following = (
        await Meeting.select(Meeting.id)
        .where((Meeting.table == flamants) & (Meeting.status == SCHEDULED_MEETING))
        .order_by(Meeting.starts_at)
        .first()
    )
    if following is not None:
        await notify.set_rsvp(following["id"], users["samira"], True, recorded_by=facilitator)
        await notify.set_rsvp(following["id"], users["karim"], False, recorded_by=None)


# Each organisation's institutions: who its tables write to.
INSTITUTIONS = [
    ("Conseil citoyen Flamants-Iris", "", "Centre social Flamants-Iris, 13014 Marseille",
     "conseil.citoyen.flamants@example.org"),
    ("Métropole Aix-Marseille-Provence", "Direction de la politique de la ville",
     "58 boulevard Charles Livon, 13007 Marseille", "politique.ville@example.org"),
    ("Mairie des 13e et 14e arrondissements", "Cabinet du maire de secteur",
     "72 rue Paul Coxe, 13014 Marseille", "mairie1314@example.org"),
    ("13 Habitat", "Agence Nord", "80 rue Albe, 13004 Marseille", "agence.nord@example.org"),
    ("Conseil national des villes (CNV)", "Secrétariat général",
     "Conseil national des villes, Paris", "cnv@example.org"),
]  # fmt: skip


async def _seed_brief(  # noqa: PLR0917 — the demo's world, handed down
    flamants: int,
    organisations: dict[str, int],
    users: dict[str, int],
    facilitator: int,
    proposals: list[int],
    now: datetime,
) -> None:
    """The Flamants table's brief, version 1: the two proposals adopted by vote in the summer,
    sent ten weeks ago to 13 Habitat (which answered) and to the Métropole (which has not:
    overdue after the table's two months). The priorities voted since wait for the next one."""
    institutions: dict[str, int] = {}
    for organisation in ("avec-nous", "collectif-des-femmes"):
        for name, service, address, contact in INSTITUTIONS:
            row = await Institution.insert(
                Institution(
                    organisation=organisations[organisation],
                    name=name,
                    service=service,
                    address=address,
                    contact=contact,
                    created_at=now - timedelta(days=120),
                )
            ).returning(Institution.id)
            if organisation == "avec-nous":
                institutions[name] = row[0]["id"]
    sent = now - timedelta(days=75)
    brief = await Brief.insert(
        Brief(
            slug="flamants-renovation",
            table=flamants,
            title="Rénovation urbaine des Flamants-Iris : les priorités des habitant·e·s",
            addressed_to="",
            introduction=(
                "La table de quartier des Flamants-Iris réunit chaque mois les habitant·e·s, avec "
                "l'appui de l'association **Avec Nous**. Les propositions ci-dessous ont été "
                "débattues en réunion puis adoptées par vote.\n\n"
                "Nous demandons qu'elles soient inscrites au programme de rénovation urbaine et "
                "qu'une réponse écrite nous soit adressée, proposition par proposition."
            ),
            language="fr",
            created_by=facilitator,
            created_at=sent - timedelta(days=2),
            updated_at=sent - timedelta(days=1),
            published_at=sent,
        )
    ).returning(Brief.id)
    brief_id = brief[0]["id"]
    # What the table had adopted when it wrote: the two proposals voted in the summer.
    adopted = [
        row["id"]
        for row in await Proposal.select(Proposal.id)
        .where(Proposal.id.is_in(proposals[:2]) & (Proposal.status == ADOPTED))
        .order_by(Proposal.id)
    ]
    await BriefItem.insert(
        *[
            BriefItem(brief=brief_id, proposal=proposal, position=position)
            for position, proposal in enumerate(adopted, start=1)
        ]
    )
    for position, name in enumerate(("13 Habitat", "Métropole Aix-Marseille-Provence"), start=1):
        await BriefAddressee.insert(
            BriefAddressee(brief=brief_id, institution=institutions[name], position=position)
        )
    await BriefSignatory.insert(
        BriefSignatory(brief=brief_id, position=1, name="Avec Nous", capacity="L'association"),
        BriefSignatory(
            brief=brief_id,
            position=2,
            name="Fatima",
            capacity="Habitante des Flamants-Iris",
            user=users["h-demo-fatima"],
            consent_recorded_by=facilitator,
            consent_at=sent - timedelta(days=3),
        ),
    )
    table = await get_table_by_id(flamants)
    manager = Principal(user_id=facilitator, table_roles={flamants: FACILITATOR}, verified=True)
    await briefs.publish_version(manager, await briefs.get_brief("flamants-renovation"), now=sent)
    # 13 Habitat answered five weeks later about the lifts: it committed to a date.
    answered = adopted[0]
    response = await Response.insert(
        Response(
            brief=brief_id,
            institution=institutions["13 Habitat"],
            received_on=(sent + timedelta(days=35)).date(),
            summary=(
                "13 Habitat confirme le remplacement des deux ascenseurs de la tour G, inscrit au "
                "plan de travaux ; les autres propositions relèvent de la Métropole."
            ),
            commitments="Remplacement des ascenseurs de la tour G avant la fin du premier semestre.",
            look_again_on=(now + timedelta(days=30)).date(),
            recorded_by=facilitator,
            recorded_at=sent + timedelta(days=36),
        )
    ).returning(Response.id)
    await ResponseItem.insert(
        ResponseItem(response=response[0]["id"], proposal=answered, status=ANSWERED)
    )
    await Proposal.update({Proposal.status: ANSWERED}).where(Proposal.id == answered)
    await StatusChange.insert(
        StatusChange(
            proposal=answered,
            from_status=TRANSMITTED,
            to_status=ANSWERED,
            actor=facilitator,
            reason="Réponse de 13 Habitat",
            at=sent + timedelta(days=36),
        )
    )
    await audit.record(manager, "response.recorded", scope_of(table), subject=f"brief:{brief_id}")


# Named places of the demo districts (steps north and east of the district's centre).
PLACES = {
    "flamants-iris": [
        ("Tour G", (1, -1)), ("Centre social Flamants-Iris", (0, 0)),
        ("École des Flamants", (-1, 1)), ("Arrêt de bus Ansaldi", (-2, -1)),
    ],
}  # fmt: skip
DEFAULT_PLACES = [("Centre social", (0, 0)), ("École", (1, 1)), ("Arrêt de bus", (-1, -1))]


# Residents who came to the meetings and voted there: a room, not only the demo logins.
ROOM = ("Aïcha", "Bernard", "Chérifa", "Dalila", "Éric", "Farida", "Gérard", "Hassan", "Inès",
        "Jamel", "Khadija", "Louis", "Malika", "Nordine")  # fmt: skip
# How the room grades the six priority proposals (best grade first: Excellent … À rejeter).
PRIORITY_GRADES = (
    (3, 6, 5, 3, 1, 1, 0),
    (2, 5, 6, 3, 2, 1, 0),
    (5, 5, 4, 2, 2, 1, 0),
    (1, 3, 4, 6, 3, 2, 0),
    (6, 6, 3, 2, 1, 1, 0),
    (0, 2, 3, 5, 5, 3, 1),
)


async def _seed_translations(table_id: int, facilitator: int, vote_id: int) -> None:
    """The open vote read in Arabic, as a facilitator translated it; the rest left to do."""
    table = await get_table_by_id(table_id)
    manager = Principal(user_id=facilitator, table_roles={table_id: FACILITATOR}, verified=True)
    original = await content.get_original("vote", vote_id)
    if original is None:
        raise LookupError(vote_id)
    words = "حافلة كل 10 دقائق في ساعات الذروة"
    data = {"language": "ar", "written_in": "fr"}
    data.update({f"field-{key}": words for key in original.fields})
    await content.save(manager, table, original, data)


async def _seed_votes(
    flamants: int, users: dict[str, int], facilitator: int, proposals: list[int], joined: datetime
) -> int:
    """The Flamants votes, cast and closed through the real services (sealed, shuffled, counted).

    Returns the open vote, which the demo meeting carries on its agenda.
    """
    table = await get_table_by_id(flamants)
    manager = Principal(user_id=facilitator, table_roles={flamants: FACILITATOR}, verified=True)
    residents = [users[login] for login in ("samira", "karim", "nadia", "youssef", "josiane")]
    for name in ROOM:
        user = await create_user(f"h-demo-{ascii_slug(name)}", name, "", language="fr")
        await Membership.insert(
            Membership(user=user.id, table=flamants, role=RESIDENT, created_at=joined)
        )
        residents.append(user.id)
        users[f"h-demo-{ascii_slug(name)}"] = user.id
    voters = [Principal(user_id=u, table_roles={flamants: RESIDENT}) for u in residents]

    async def held(vote_id: int, days_ago: int) -> None:
        await closing.close_vote(manager, table, vote_id)
        await box.fingerprint(vote_id)
        now = datetime.now(UTC)
        opened, closed = now - timedelta(days=days_ago), now - timedelta(days=days_ago - 7)
        await Vote.update({Vote.opened_at: opened, Vote.closed_at: closed}).where(
            Vote.id == vote_id
        )
        # The proposals' history and decisions tell the same dates as the vote.
        voted_on = VoteOption.select(VoteOption.proposal).where(VoteOption.vote == vote_id)
        on_them = StatusChange.proposal.is_in([row["proposal"] for row in await voted_on])
        await StatusChange.update({StatusChange.at: opened}).where(
            on_them & (StatusChange.to_status == VOTING)
        )
        await StatusChange.update({StatusChange.at: closed}).where(
            on_them & (StatusChange.to_status != VOTING)
        )
        await Decision.update({Decision.decided_at: closed}).where(Decision.vote == vote_id)

    # Two adopted, one not retained: as the yes/no rule decides.
    for proposal, choices, days_ago in (
        (proposals[0], "yyyya", 92),
        (proposals[1], "yynyy", 90),
        (proposals[2], "nynna", 15),
    ):
        question = PROPOSALS[proposals.index(proposal)][4]
        vote_id = await votes.open_vote(manager, table, [proposal], {"question": question})
        for voter, letter in zip(voters, choices, strict=False):
            choice = {"y": "yes", "n": "no", "a": "abstain"}[letter]
            await votes.cast(voter, table, vote_id, {"choice": choice})
        await held(vote_id, days_ago)

    priority = proposals[-6:]
    vote_id = await votes.open_vote(
        manager,
        table,
        priority,
        {
            "question": "Quelles priorités porter en premier auprès de la Métropole et du bailleur ?",
            "method": "majority_judgment",
            "adopt_rule": "grade",
            "adopt_grade": "Bien",
        },
    )
    options = (await votes.options([vote_id]))[vote_id]
    # Each voter's grades follow the profiles above; the last voter leaves one ungraded.
    sheets: list[dict[str, str]] = [{} for _ in voters]
    for option, profile in zip(options, PRIORITY_GRADES, strict=True):
        grades = [g for g, n in enumerate(profile) for _ in range(n)]
        random.Random(option["position"]).shuffle(grades)  # noqa: S311 (a demo's fixed order)
        for sheet, grade in zip(sheets, grades, strict=False):
            sheet[f"grade-{option['id']}"] = str(grade)
    sheets[-1].pop(f"grade-{options[-1]['id']}", None)
    for voter, sheet in zip(voters, sheets, strict=True):
        await votes.cast(voter, table, vote_id, sheet)
    await held(vote_id, 10)

    open_vote = await votes.open_vote(manager, table, [proposals[5]], {"question": PROPOSALS[5][4]})
    for voter, letter in zip(voters[:3], "yya", strict=True):
        choice = {"y": "yes", "n": "no", "a": "abstain"}[letter]
        await votes.cast(voter, table, open_vote, {"choice": choice})
    return open_vote


def _placed(table_places: list[dict], index: int) -> dict:
    """Two proposals in three have a place, so the demo maps have points."""
    if not table_places or index % 3 == 2:
        return {}
    place = table_places[index % len(table_places)]
    return {
        "latitude": place["latitude"],
        "longitude": place["longitude"],
        "district": place["district"],
    }


WALK_INS = ("Mme Benali", "Fatou", "Rachid", "Hélène", "Moussa", "Leïla", "Ahmed", "Zohra",
            "Mme Garcia", "Sofiane", "Kenza", "Bernard", "Aïcha")  # fmt: skip


async def _seed_meetings(
    tables: dict[str, int],
    users: dict[str, int],
    facilitator: int,
    proposals: list[int],
    open_vote: int | None,
) -> None:
    """Three meetings held at the Flamants (attendance, minutes), and the next ones."""
    local = i18n.LOCAL_TIMEZONE
    today = datetime.now(local).date()
    place = ("Centre social Flamants-Iris", "Avenue Alexandre Ansaldi, 13014 Marseille")
    members = [users[login] for login in ("samira", "karim", "nadia", "youssef", "josiane")]
    for weeks_ago, title, walk_ins in (
        (11, "Réunion de rentrée de la table", 6),
        (7, "Ascenseurs et cages d'escalier : état des lieux", 12),
        (3, "Préparer la note au conseil citoyen", 9),
    ):
        starts = datetime.combine(today - timedelta(weeks=weeks_ago), time(18, 0), tzinfo=local)
        meeting = await Meeting.insert(
            Meeting(
                table=tables["flamants-iris"],
                title=title,
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                place=place[0],
                address=place[1],
                languages="fr ar",
                status=CLOSED_MEETING,
                created_by=facilitator,
                opened_at=starts,
                closed_at=starts + timedelta(hours=2),
            )
        ).returning(Meeting.id)
        meeting_id = meeting[0]["id"]
        await AgendaItem.insert(
            AgendaItem(meeting=meeting_id, position=1, title="Accueil et tour de table"),
            AgendaItem(meeting=meeting_id, position=2, title=title, proposal=proposals[0]),
            AgendaItem(meeting=meeting_id, position=3, title="Questions diverses"),
        )
        rows = [
            Attendance(
                meeting=meeting_id,
                user=user,
                person=f"user:{user}",
                method=BY_QR if index % 2 else BY_LIST,
                recorded_by=facilitator,
                checked_in_at=starts + timedelta(minutes=index),
            )
            for index, user in enumerate(members)
        ]
        rows += [
            Attendance(
                meeting=meeting_id,
                name=name,
                person=f"name:{name.casefold()}",
                method=WALK_IN,
                recorded_by=facilitator,
                checked_in_at=starts + timedelta(minutes=10 + index),
            )
            for index, name in enumerate(WALK_INS[:walk_ins])
        ]
        await Attendance.insert(*rows)
        if weeks_ago == 3:
            minutes = await Minutes.insert(
                Minutes(
                    meeting=meeting_id,
                    version=1,
                    body=DEMO_MINUTES,
                    published=True,
                    author=facilitator,
                    updated_at=starts + timedelta(days=1),
                    published_at=starts + timedelta(days=1),
                )
            ).returning(Minutes.id)
            await MinutesLink.insert(
                MinutesLink(minutes=minutes[0]["id"], proposal=proposals[0]),
                MinutesLink(minutes=minutes[0]["id"], proposal=proposals[1]),
            )

    for slug, days, title, address in (
        ("flamants-iris", 6, "Réunion de la table : transports et sécurité", place),
        ("les-aygalades", 9, "Table de quartier des Aygalades", ("Maison pour tous des Aygalades", "Boulevard de la Padouane, 13015 Marseille")),
    ):  # fmt: skip
        starts = datetime.combine(today + timedelta(days=days), time(18, 30), tzinfo=local)
        meeting = await Meeting.insert(
            Meeting(
                table=tables[slug],
                title=title,
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                place=address[0],
                address=address[1],
                languages="fr ar" if slug == "flamants-iris" else "fr",
                created_by=facilitator if slug == "flamants-iris" else None,
            )
        ).returning(Meeting.id)
        items = [AgendaItem(meeting=meeting[0]["id"], position=1, title="Accueil")]
        if slug == "flamants-iris":
            items.append(
                AgendaItem(
                    meeting=meeting[0]["id"],
                    position=2,
                    title=PROPOSALS[5][4],
                    proposal=proposals[5],
                    vote=open_vote,
                )
            )
        items.append(
            AgendaItem(
                meeting=meeting[0]["id"], position=len(items) + 1, title="Questions diverses"
            )
        )
        await AgendaItem.insert(*items)


# A meeting already held where the table voted in the room: on phones before it, on the shared
# tablet and on paper during it (the paper batch entered twice, by the facilitator and by the
# coordinator), then closed. Logins of the demo, or h-demo-<name> for the room's residents.
ROOM_VOTE_QUESTION = "Demander des conteneurs en plus près du marché, vidés le soir du marché ?"
ROOM_VOTE_DAYS_AGO = 14
ROOM_VOTE_MEMBERS = ("samira", "karim", "nadia", "youssef", "josiane", "h-demo-fatima",
                     "h-demo-aicha", "h-demo-bernard", "h-demo-cherifa", "h-demo-dalila")  # fmt: skip
ROOM_VOTE_WALK_INS = ("Mme Benali", "Fatou", "Rachid")
# Online in the three days before the meeting (Hassan and Inès did not come to it).
ROOM_VOTE_ONLINE = (("karim", "yes"), ("h-demo-hassan", "yes"), ("h-demo-ines", "no"))
# On the shared tablet during the meeting: two in Arabic, one walk-in.
ROOM_VOTE_TABLET = (
    ("youssef", "yes"),
    ("h-demo-fatima", "yes"),
    ("name:mme benali", "yes"),
    ("h-demo-dalila", "abstain"),
)
ROOM_VOTE_PAPER = ("samira", "nadia", "josiane", "h-demo-aicha", "h-demo-bernard",
                   "h-demo-cherifa", "name:fatou", "name:rachid")  # fmt: skip
# The batch of paper ballots: 8 ballots, 1 blank; for 5, against 1, abstain 1.
ROOM_VOTE_BATCH = {"ballots": 8, "blank": 1, "spoilt": 0}
ROOM_VOTE_PAPER_TALLY = (5, 1, 1)


async def _seed_room_vote(
    flamants: int, organisation: int, users: dict[str, int], proposals: list[int]
) -> int:
    """The room vote, through the services: online and tablet ballots sealed, paper handed out
    and a batch entered twice, the vote closed and counted; then dated back to the meeting.

    Returns the vote's id.
    """
    table = await get_table_by_id(flamants)
    facilitator = Principal(
        user_id=users["animation.flamants@avec-nous.example"],
        display_name="Mehdi (adulte relais)",
        table_roles={flamants: FACILITATOR},
        verified=True,
    )
    coordinator = Principal(
        user_id=users["coordination@avec-nous.example"],
        display_name="Leïla (coordination Avec Nous)",
        coordinated_organisations=frozenset({organisation}),
        verified=True,
    )
    local = i18n.LOCAL_TIMEZONE
    day = datetime.now(local).date() - timedelta(days=ROOM_VOTE_DAYS_AGO)
    starts = datetime.combine(day, time(18, 0), tzinfo=local)
    meeting = await Meeting.insert(
        Meeting(
            table=flamants,
            title="Propreté autour du marché : la table vote",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            place="Centre social Flamants-Iris",
            address="Avenue Alexandre Ansaldi, 13014 Marseille",
            languages="fr ar",
            created_by=facilitator.user_id,
            created_at=starts - timedelta(days=10),
        )
    ).returning(Meeting.id)
    meeting_id = meeting[0]["id"]
    await AgendaItem.insert(
        AgendaItem(meeting=meeting_id, position=1, title="Accueil et tour de table"),
        AgendaItem(
            meeting=meeting_id,
            position=2,
            title="Les déchets les jours de marché",
            proposal=proposals[3],
        ),
    )
    # Anyone present may vote (walk-ins too), and every member, present or not.
    vote_id = await votes.open_vote(
        facilitator,
        table,
        [proposals[3]],
        {"question": ROOM_VOTE_QUESTION, "electorate": "both", "meeting": str(meeting_id)},
    )
    await AgendaItem.insert(  # after the vote, which open_vote put on the agenda
        AgendaItem(meeting=meeting_id, position=4, title="Questions diverses")
    )
    attendance = [
        Attendance(
            meeting=meeting_id,
            user=users[login],
            person=f"user:{users[login]}",
            method=BY_QR if index % 2 else BY_LIST,
            recorded_by=facilitator.user_id,
            checked_in_at=starts + timedelta(minutes=index),
        )
        for index, login in enumerate(ROOM_VOTE_MEMBERS)
    ]
    attendance += [
        Attendance(
            meeting=meeting_id,
            name=name,
            person=f"name:{name.casefold()}",
            method=WALK_IN,
            recorded_by=facilitator.user_id,
            checked_in_at=starts + timedelta(minutes=12 + index),
        )
        for index, name in enumerate(ROOM_VOTE_WALK_INS)
    ]
    await Attendance.insert(*attendance)

    def person(key: str) -> str:
        return key if key.startswith("name:") else f"user:{users[key]}"

    vote = await votes.get(vote_id)
    vote_options = (await votes.options([vote_id]))[vote_id]
    option = vote_options[0]["id"]
    for login, choice in ROOM_VOTE_ONLINE:
        voter = Principal(user_id=users[login], table_roles={flamants: RESIDENT})
        await votes.cast(voter, table, vote_id, {"choice": choice})
    names = {p["person"]: p["name"] for p in await room.present(vote)}
    for key, choice in ROOM_VOTE_TABLET:  # as meetings.room.cast_on_tablet records them
        who = person(key)
        _, participation = await votes.record_ballot(
            table,
            vote_id,
            votes.read_marks(vote, vote_options, {"choice": choice}),
            person=who,
            user_id=users[key] if who.startswith("user:") else None,
            channel=TABLET,
            name="" if who.startswith("user:") else names[who],
            recorded_by=facilitator.user_id,
        )
        await audit.record(
            facilitator,
            "vote.cast_on_tablet",
            scope_of(table),
            subject=f"participation:{participation}",
        )
    await room.hand_out_paper(facilitator, table, vote_id, [person(k) for k in ROOM_VOTE_PAPER])
    count_id = await room.open_paper_batch(facilitator, table, vote_id)
    # As the count's form sends them: text (a number that is not text reads as an empty box).
    figures = {name: str(ROOM_VOTE_BATCH[name]) for name in ("ballots", "blank", "spoilt")}
    for grade, n in enumerate(ROOM_VOTE_PAPER_TALLY):
        figures[f"o{option}-g{grade}"] = str(n)
    for counter in (facilitator, coordinator):  # two people, apart: recorded when they agree
        await room.enter_count(counter, table, vote_id, count_id, figures)
    await closing.close_vote(facilitator, table, vote_id)
    await box.fingerprint(vote_id)
    await _date_room_vote(vote_id, meeting_id, count_id, starts)
    return vote_id


async def _date_room_vote(vote_id: int, meeting_id: int, count_id: int, starts: datetime) -> None:
    """Everything the room vote wrote, dated as it happened: online in the three days before
    the meeting, the tablet and paper during it, the count and the closing at its end."""
    opened, closed = starts - timedelta(days=3), starts + timedelta(minutes=100)
    await Meeting.update(
        {
            Meeting.status: CLOSED_MEETING,
            Meeting.opened_at: starts,
            Meeting.closed_at: starts + timedelta(hours=2),
        }
    ).where(Meeting.id == meeting_id)
    await Vote.update({Vote.opened_at: opened, Vote.closed_at: closed}).where(Vote.id == vote_id)
    roll = await (
        Participation.select(Participation.id, Participation.channel)
        .where(Participation.vote == vote_id)
        .order_by(Participation.id)
    )
    for index, row in enumerate(roll):
        if row["channel"] == ONLINE:
            at = opened + timedelta(hours=5 + 17 * index)
        elif row["channel"] == TABLET:
            at = starts + timedelta(minutes=40 + 3 * index)
        else:  # paper, all handed out at once
            at = starts + timedelta(minutes=60)
        await Participation.update({Participation.cast_at: at}).where(Participation.id == row["id"])
        await AuditEntry.update({AuditEntry.at: at}).where(
            AuditEntry.subject == f"participation:{row['id']}"
        )
    await RoomCount.update(
        {
            RoomCount.opened_at: starts + timedelta(minutes=75),
            RoomCount.recorded_at: starts + timedelta(minutes=92),
        }
    ).where(RoomCount.id == count_id)
    entries = await (
        RoomCountEntry.select(RoomCountEntry.id)
        .where(RoomCountEntry.count == count_id)
        .order_by(RoomCountEntry.id)
    )
    for index, row in enumerate(entries):
        await RoomCountEntry.update(
            {RoomCountEntry.entered_at: starts + timedelta(minutes=88 + 4 * index)}
        ).where(RoomCountEntry.id == row["id"])
    moments = {
        ("vote", "vote.opened"): opened,
        ("vote", "vote.paper_handed_out"): starts + timedelta(minutes=60),
        ("vote", "vote.closed"): closed,
        ("room_count", "vote.paper_batch_opened"): starts + timedelta(minutes=75),
        ("room_count", "vote.count_pending"): starts + timedelta(minutes=88),
        ("room_count", "vote.count_recorded"): starts + timedelta(minutes=92),
    }
    for (kind, action), at in moments.items():
        subject = f"vote:{vote_id}" if kind == "vote" else f"room_count:{count_id}"
        await AuditEntry.update({AuditEntry.at: at}).where(
            (AuditEntry.subject == subject) & (AuditEntry.action == action)
        )
    # The proposal's history and decision tell the same dates as the vote.
    voted_on = VoteOption.select(VoteOption.proposal).where(VoteOption.vote == vote_id)
    on_it = StatusChange.proposal.is_in([row["proposal"] for row in await voted_on])
    await StatusChange.update({StatusChange.at: opened}).where(
        on_it & (StatusChange.to_status == VOTING)
    )
    await StatusChange.update({StatusChange.at: closed}).where(
        on_it & (StatusChange.to_status != VOTING)
    )
    await Decision.update({Decision.decided_at: closed}).where(Decision.vote == vote_id)


DEMO_MINUTES = """## Présent·e·s

Quatorze habitant·e·s, l'animatrice d'Avec Nous. Interprétation en arabe assurée par Samira.

## Ce qui a été dit

- Les **ascenseurs de la tour G** sont encore tombés en panne trois fois ce mois-ci ; le bailleur
  n'a pas répondu au dernier courrier.
- La table valide la liste des priorités à envoyer au conseil citoyen.

## Décisions

La note de position sera envoyée au conseil citoyen du 14e avant la fin du mois.
"""


def print_logins() -> None:
    print(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
    for login, name, _, role, place in PEOPLE:
        print(f"  {login:<50} {role:<12} {place:<22} {name}")
    print("\nNotifications of the Flamants residents (fictitious numbers and addresses):")
    for login, phone, email, sms, _by_email, digest in CHANNELS:
        chosen = (
            f"SMS {phone}" if sms else f"e-mail {email}" + (" (daily digest)" if digest else "")
        )
        print(f"  {login:<50} {chosen}")
    print("\nDemo TOTP secrets of those who manage tables (add them to an authenticator app):")
    for login, secret in DEMO_TOTP_SECRETS.items():
        print(f"  {login:<50} {secret}")
    print()
