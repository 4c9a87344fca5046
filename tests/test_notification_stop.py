"""Stopping notifications (issue 16): "STOP" answered by SMS, through the provider's inbound
webhook, and the opt-out link of every e-mail; both take effect at once."""

from __future__ import annotations

import dataclasses
import json

import pytest
from httpx import AsyncClient

from accounts.models import User
from audit.models import AuditEntry
from notifications import delivery, inbound, services
from notifications.models import CANCELLED, EMAIL, QUEUED, SMS, Preference
from tests import test_notification_delivery as sending
from tests.factories import post_form, t
from tests.test_notification_delivery import Clock, SmsServer, deliveries, emit, only, resident
from voix.settings import get_settings

TOKEN = "inbound-token-0123456789"
INBOUND = f"/notifications/sms/inbound/{TOKEN}"

# The clock and the SMS provider of the sending's tests.
clock = sending.clock
sms_server = sending.sms_server


@pytest.fixture
def inbound_token(monkeypatch: pytest.MonkeyPatch) -> str:
    changed = dataclasses.replace(get_settings(), sms_inbound_token=TOKEN)
    monkeypatch.setattr(inbound, "get_settings", lambda: changed)
    return TOKEN


async def journal(user: int) -> list[str]:
    """What the journal says of this account's channels: how each change came."""
    rows = await AuditEntry.select(AuditEntry.details).where(
        (AuditEntry.action == "channels.changed") & (AuditEntry.subject == f"user:{user}")
    )
    return [
        json.loads(r["details"])["via"] if isinstance(r["details"], str) else r["details"]["via"]
        for r in rows
    ]


async def preference(user: int) -> dict:
    row = await Preference.select().where(Preference.user == user).first()
    assert row is not None
    return row


# STOP by SMS -----------------------------------------------------------------------------


async def test_stop_by_sms_withdraws_consent_and_cancels_at_once(
    client: AsyncClient, clock: Clock, sms_server: SmsServer, inbound_token: str
) -> None:
    # Two accounts with the number, typed two ways; a neighbour with another number.
    samira = await resident("samira", phone="06 12 34 56 78", email="s@example.org")
    again = await resident("samira-2", phone="+33 6 12 34 56 78")
    karim = await resident("karim", phone="06 12 34 56 79")
    await emit([samira, again, karim], "vote.opened:1")

    answer = await client.post(INBOUND, json={"from": "+33612345678", "text": "Stop"})

    assert answer.status_code == 200
    for user in (samira, again):
        assert (await only(user, SMS))["status"] == CANCELLED
        stopped = await preference(user)
        assert stopped["sms_consent_at"] is None
        assert stopped["sms_stopped_at"] is not None
    assert (await only(samira, EMAIL))["status"] == QUEUED  # e-mail is another consent
    assert (await preference(samira))["email_consent_at"] is not None
    assert (await only(karim, SMS))["status"] == QUEUED
    assert (await preference(karim))["sms_consent_at"] is not None
    assert await journal(samira) == await journal(again) == ["STOP"]
    assert await journal(karim) == []

    await delivery.dispatch()
    assert [request.body["to"] for request in sms_server.received] == ["+33612345679"]
    # And what comes next is not even queued for them.
    await emit([samira, karim], "vote.opened:2")
    assert len(await deliveries(samira, SMS)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"from": "0612345678", "text": "ARRÊT"}},
        {"data": {"from": "0612345678", "text": "arret merci"}},
        {"json": {"from": "33612345678", "text": " STOPSMS "}},
        {"json": {"to": "33612345678", "reply": "stop", "msg_status": "replied"}},  # Brevo
    ],
)
async def test_stop_in_its_various_forms(
    client: AsyncClient, clock: Clock, inbound_token: str, body: dict
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    answer = await client.post(INBOUND, **body)
    assert answer.status_code == 200
    assert (await only(user))["status"] == CANCELLED
    assert (await preference(user))["sms_stopped_at"] is not None


async def test_other_answers_change_nothing(
    client: AsyncClient, clock: Clock, inbound_token: str
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    for text in ("Merci, je viendrai", "Ne pas stopper", ""):
        answer = await client.post(INBOUND, json={"from": "+33612345678", "text": text})
        assert answer.status_code == 200
    assert (await only(user))["status"] == QUEUED
    assert (await preference(user))["sms_consent_at"] is not None


async def test_the_inbound_address_needs_its_token(
    client: AsyncClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await resident("samira", phone="06 12 34 56 78")
    await emit([user], "vote.opened:1")
    stop = {"from": "+33612345678", "text": "STOP"}
    # Unset: the address does not exist.
    assert get_settings().sms_inbound_token is None
    assert (await client.post(INBOUND, json=stop)).status_code == 404
    changed = dataclasses.replace(get_settings(), sms_inbound_token=TOKEN)
    monkeypatch.setattr(inbound, "get_settings", lambda: changed)
    wrong = "/notifications/sms/inbound/inbound-token-0123456780"
    assert (await client.post(wrong, json=stop)).status_code == 404
    assert (await only(user))["status"] == QUEUED
    # No CSRF token, no cookie: the provider's server posts it.
    assert (await client.post(INBOUND, json=stop)).status_code == 200
    assert (await only(user))["status"] == CANCELLED


# The opt-out link ------------------------------------------------------------------------


async def test_the_opt_out_link_asks_first_then_stops_e_mails(
    client: AsyncClient, clock: Clock
) -> None:
    user = await resident("samira", phone="06 12 34 56 78", email="s@example.org")
    await emit([user], "vote.opened:1")
    link = await delivery.stop_path(user, EMAIL)

    shown = await client.get(link)
    assert shown.status_code == 200
    assert f'action="{link}"' in shown.text
    assert (
        t("Do you want to stop receiving notifications from Voix des Quartiers by e-mail?")
        in shown.text
    )
    # Opening the link (a mail scanner does) changes nothing.
    assert (await preference(user))["email_consent_at"] is not None
    assert (await only(user, EMAIL))["status"] == QUEUED

    done = await post_form(client, link, {})
    assert done.status_code == 303
    assert done.headers["location"] == link
    assert (await preference(user))["email_consent_at"] is None
    assert (await only(user, EMAIL))["status"] == CANCELLED
    assert await journal(user) == ["opt-out link"]
    # SMS is another consent, kept.
    assert (await preference(user))["sms_consent_at"] is not None
    assert (await only(user, SMS))["status"] == QUEUED

    after = await client.get(link)
    assert after.status_code == 200
    assert t("Done: you no longer receive notifications by e-mail.") in after.text
    assert '<form method="post" action="/notifications/stop/' not in after.text


async def test_the_opt_out_needs_the_form_s_csrf_token(client: AsyncClient, clock: Clock) -> None:
    user = await resident("samira", email="s@example.org")
    link = await delivery.stop_path(user, EMAIL)
    refused = await client.post(link, data={})
    assert refused.status_code == 403
    assert (await preference(user))["email_consent_at"] is not None


async def test_a_forged_or_foreign_link_is_not_found(client: AsyncClient, clock: Clock) -> None:
    user = await resident("samira", email="s@example.org")
    token = await delivery.stop_token(user, EMAIL)
    user_id, channel, signature = token.split(".")
    forged = [
        f"{user_id}.{channel}.{'0' * 32}",
        f"{int(user_id) + 1}.{channel}.{signature}",  # another's account, this signature
        f"{user_id}.sms.{signature}",  # another channel
        f"{user_id}.{channel}.{signature[:-1]}",
    ]
    for bad in forged:
        assert (await client.get(f"/notifications/stop/{bad}")).status_code == 404
        assert (await post_form(client, f"/notifications/stop/{bad}", {})).status_code == 404
    assert (await preference(user))["email_consent_at"] is not None
    assert await delivery.read_stop_token(token) == (user, EMAIL)


async def test_the_sms_opt_out_link_stops_sms(client: AsyncClient, clock: Clock) -> None:
    user = await resident("samira", phone="06 12 34 56 78", email="s@example.org")
    await emit([user], "vote.opened:1")
    link = await delivery.stop_path(user, SMS)
    assert t("Stop the text messages") in (await client.get(link)).text
    assert (await post_form(client, link, {})).status_code == 303
    assert (await preference(user))["sms_consent_at"] is None
    assert (await preference(user))["email_consent_at"] is not None
    assert (await only(user, SMS))["status"] == CANCELLED
    assert (await only(user, EMAIL))["status"] == QUEUED
    assert services.now() == clock()


async def test_an_e_mail_opt_out_gives_no_sms_consent_to_a_number_typed_since(
    client: AsyncClient, clock: Clock
) -> None:
    """Stopping e-mails leaves SMS as it is: it does not give again, for a number typed since,
    a consent that was given for another."""
    user = await resident("samira", phone="06 12 34 56 78", email="s@example.org")
    before = await preference(user)
    await User.update({User.phone: "07 00 00 00 00"}).where(User.id == user)
    link = await delivery.stop_path(user, EMAIL)
    assert (await post_form(client, link, {})).status_code == 303
    after = await preference(user)
    assert after["email_consent_at"] is None
    assert after["sms_consent_at"] == before["sms_consent_at"]
    assert after["sms_consent_phone"] == before["sms_consent_phone"] == "06 12 34 56 78"
