"""What notifications say (notifications.messages): every kind in every language and channel,
short, times in Paris, SMS in one segment ending with their link, French in GSM-7."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from babel.dates import format_skeleton

from notifications import messages, sms
from notifications.messages import EMAIL, SITE, SMS
from voix.i18n import LANGUAGES, LOCAL_TIMEZONE, catalog

BASE = "http://testserver.local"  # VOIX_BASE_URL in the tests
WINTER = "2026-12-02T17:30:00+00:00"  # 18:30 in Paris
SUMMER = "2026-07-02T16:30:00+00:00"  # 18:30 in Paris too

PARAMS: dict[str, dict[str, Any]] = {
    "meeting.scheduled": {
        "table": "Les Flamants-Iris",
        "title": "Réunion de décembre",
        "starts_at": WINTER,
        "place": "Centre social",
        "address": "12 avenue Salengro",
    },
    "meeting.changed": {"table": "Les Flamants-Iris", "title": "Réunion", "starts_at": WINTER,
                        "place": "Maison pour tous", "address": ""},
    "meeting.cancelled": {"table": "Les Flamants-Iris", "title": "Réunion", "starts_at": WINTER,
                          "place": "Centre social", "address": ""},
    "meeting.reminder": {
        "table": "Les Flamants-Iris",
        "title": "Réunion de décembre",
        "starts_at": WINTER,
        "place": "Centre social",
        "address": "12 avenue Salengro, 13014 Marseille",
        "agenda": ["Les ascenseurs", "Le budget participatif"],
    },
    "vote.opened": {"table": "Les Flamants-Iris", "question": "Repeindre le hall ?",
                    "closes_at": WINTER},
    "vote.closing": {"table": "Les Flamants-Iris", "question": "Repeindre le hall ?",
                     "closes_at": WINTER},
    "vote.result": {"table": "Les Flamants-Iris", "question": "Repeindre le hall ?"},
    "proposal.status": {"table": "Les Flamants-Iris", "title": "Réparer les ascenseurs",
                        "status": "adopted"},
    "institution.answer": {"table": "Les Flamants-Iris", "institution": "13 Habitat",
                           "brief": "Rénovation des Flamants"},
    "minutes.published": {"table": "Les Flamants-Iris", "title": "Réunion", "starts_at": WINTER},
    "message": {"table": "Les Flamants-Iris", "author": "Fatou",
                "text": "N'oubliez pas la réunion de jeudi !\nApportez vos idées."},
}  # fmt: skip


def event(kind: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "params": {**PARAMS.get(kind, {}), **params}, "path": "/meetings/3"}


def fr(msgid: str, **params: Any) -> str:
    text = catalog("fr").gettext(msgid)
    return text % params if params else text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_every_kind_renders_in_every_language_and_channel(kind: str, language: str) -> None:
    for channel in (SITE, SMS, EMAIL):
        rendered = messages.render(event(kind), language, channel)
        assert rendered.subject
        assert rendered.path == "/meetings/3"
        assert "%(" not in rendered.subject + rendered.text
    site = messages.render(event(kind), language, SITE)
    assert "Les Flamants-Iris" in site.subject
    email = messages.render(event(kind), language, EMAIL)
    assert email.subject == site.subject
    assert email.text.endswith(f"\n{BASE}/meetings/3")
    text = messages.render(event(kind), language, SMS).text
    assert text.endswith(f"\n{BASE}/meetings/3")
    if kind != "message":
        # One segment, or two for a meeting's time and place (kept whole in Arabic).
        assert sms.segments(text) == messages.KEEP_WHOLE.get(kind, 1) or sms.segments(text) == 1


def test_french_sms_stay_in_gsm_7() -> None:
    for kind in PARAMS:
        text = messages.render(event(kind), "fr", SMS).text
        assert sms.encoding(text) == sms.GSM7, (kind, text)


def test_times_are_those_of_paris_summer_and_winter() -> None:
    for starts in (WINTER, SUMMER):
        site = messages.render(event("meeting.reminder", starts_at=starts), "fr", SITE)
        text = messages.render(event("meeting.reminder", starts_at=starts), "fr", SMS).text
        assert "18:30" in site.subject
        assert "18:30" in text
    site = messages.render(event("meeting.scheduled", starts_at=SUMMER), "fr", SITE)
    assert "jeudi 2 juillet 2026" in site.text


def test_the_reminder_says_when_where_and_what() -> None:
    email = messages.render(event("meeting.reminder"), "fr", EMAIL)
    assert "mercredi 2 décembre 2026" in email.text
    assert "18:30" in email.text
    assert "Centre social" in email.text
    assert "12 avenue Salengro, 13014 Marseille" in email.text
    assert "- Les ascenseurs\n- Le budget participatif" in email.text
    assert fr(messages.AGENDA) in email.text
    short = messages.render(event("meeting.reminder"), "fr", SMS).text
    core = fr(messages.MEETING_REMINDER_SMS, time="18:30", place="Centre social")
    named = fr(messages.SMS_FROM_TABLE, table="Les Flamants-Iris", text=core)
    assert short == sms.fit(f"{named}\n{BASE}/meetings/3")
    assert "ascenseurs" not in short  # the agenda is for the e-mail and the site


def test_arabic_is_in_arabic_ucs_2_and_one_segment() -> None:
    rendered = messages.render(event("meeting.scheduled"), "ar", SMS)
    at = datetime.fromisoformat(WINTER).astimezone(LOCAL_TIMEZONE)
    assert sms.encoding(rendered.text) == sms.UCS2
    assert sms.segments(rendered.text) == 1
    assert format_skeleton("MMMd", at, locale="ar") in rendered.text
    assert rendered.text.endswith(f"\n{BASE}/meetings/3")
    arabic = catalog("ar").gettext(messages.MEETING_SCHEDULED)
    assert messages.render(event("meeting.scheduled"), "ar", SITE).subject == arabic % {
        "table": "Les Flamants-Iris",
        "title": "Réunion de décembre",
    }


def test_the_table_s_name_goes_first_when_it_fits_else_it_is_left_out() -> None:
    fits = messages.render(event("vote.result"), "fr", SMS).text
    assert fits.startswith("Les Flamants-Iris: ")
    long_name = "Table de quartier " * 6
    left_out = messages.render(event("vote.result", table=long_name), "fr", SMS).text
    core = fr(messages.VOTE_RESULT_SMS, question="Repeindre le hall ?")
    assert left_out == sms.fit(f"{core}\n{BASE}/meetings/3")
    # Arabic, in UCS-2, has 70 characters: what counts comes before the table's name.
    arabic = messages.render(event("meeting.scheduled"), "ar", SMS).text
    assert "Les Flamants-Iris" not in arabic
    assert sms.segments(arabic) == 1


def test_a_long_title_is_cut_to_one_segment_and_the_link_kept() -> None:
    long = "Réparer enfin les ascenseurs du bâtiment B " * 5
    text = messages.render(event("proposal.status", title=long), "fr", SMS).text
    assert sms.segments(text) == 1
    assert sms.length(text) <= 160
    head, link = text.rsplit("\n", 1)
    assert link == f"{BASE}/meetings/3"
    assert head.endswith("...")


def test_the_facilitator_s_message_is_shown_as_typed_under_the_table_s_name() -> None:
    typed = PARAMS["message"]["text"]
    site = messages.render(event("message"), "fr", SITE)
    assert site.subject == fr(messages.MESSAGE, table="Les Flamants-Iris")
    assert site.text == fr(messages.MESSAGE_FRAME, author="Fatou", table="Les Flamants-Iris") + (
        "\n" + typed
    )
    short = messages.render(event("message"), "fr", SMS).text
    assert "Apportez vos idées." in short  # é is GSM-7: nothing to replace
    assert short.startswith(fr(messages.MESSAGE_SMS, table="Les Flamants-Iris", author="Fatou"))


def test_a_proposal_s_status_is_named_in_the_reader_s_language() -> None:
    site = messages.render(event("proposal.status"), "fr", SITE)
    assert fr("Adopted") in site.text


def test_an_unknown_kind_still_says_something() -> None:
    rendered = messages.render({"kind": "later.kind", "params": "{}", "path": "/"}, "fr", SMS)
    assert rendered.text == sms.fit(fr(messages.SOMETHING_NEW) + f"\n{BASE}/")


def test_params_as_stored_json_render_the_same() -> None:
    import json

    stored = {**event("vote.opened"), "params": json.dumps(PARAMS["vote.opened"])}
    assert messages.render(stored, "fr", EMAIL) == messages.render(
        event("vote.opened"), "fr", EMAIL
    )


def test_bundles_count_and_lead_to_the_notifications_page() -> None:
    bundle = messages.render_bundle(3, "fr", SMS)
    assert "3" in bundle.text
    assert bundle.text.endswith(f"\n{BASE}/notifications")
    assert sms.segments(bundle.text) == 1
    assert sms.segments(messages.render_bundle(12, "ar", SMS).text) == 1
    digest = messages.render_digest([event("vote.opened"), event("vote.result")], "fr")
    assert "2" in digest.subject
    assert "Repeindre le hall ?" in digest.text
    assert digest.text.count(f"{BASE}/meetings/3") == 2


def test_the_e_mail_footer_carries_the_opt_out_link() -> None:
    footer = messages.footer("fr", "/notifications/stop/abc")
    assert footer.endswith(f"{BASE}/notifications/stop/abc")
    assert fr(messages.FOOTER, link=f"{BASE}/notifications/stop/abc") in footer


def test_rendering_leaves_the_current_language_alone() -> None:
    from voix import i18n

    token = i18n.current_language.set("en")
    try:
        messages.render(event("vote.opened"), "ar", SITE)
        assert i18n.current_language.get() == "en"
    finally:
        i18n.current_language.reset(token)
    assert datetime.now(UTC)  # the module needs no clock
