"""Facilitators translate proposals; readers see their language, marked, and the original."""

from __future__ import annotations

from proposals.models import Translation

from .factories import add_proposal, build_world, post_form, sign_in, sign_out, t

ARABIC = {"language": "ar", "title": "إصلاح المصاعد قبل الشتاء", "body": "المصعد معطل كل أسبوع."}


async def test_a_translation_is_shown_marked_with_the_original_one_click_away(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, "Réparer les ascenseurs avant l'hiver")
    await sign_in(client, world.users["facilitator_a"])
    saved = await post_form(client, f"/proposals/{proposal}/translations", ARABIC)
    assert saved.status_code == 303
    # Saving again corrects it: still one translation per language.
    again = await post_form(
        client, f"/proposals/{proposal}/translations", {**ARABIC, "body": "المصعد معطل دائمًا."}
    )
    assert again.status_code == 303
    assert await Translation.count() == 1

    sign_out(client)
    arabic = await client.get(f"/proposals/{proposal}?lang=ar")
    assert "إصلاح المصاعد قبل الشتاء" in arabic.text
    assert "المصعد معطل دائمًا." in arabic.text
    assert (
        t("Translated from %(language)s by the facilitators.", "ar", language="الفرنسية")
        in arabic.text
    )
    listing = await client.get("/tables/flamants-iris?lang=ar")
    assert "إصلاح المصاعد قبل الشتاء" in listing.text
    original = await client.get(f"/proposals/{proposal}?original=1")
    assert "Réparer les ascenseurs avant l&#39;hiver" in original.text
    english = await client.get(f"/proposals/{proposal}?lang=en")
    assert "Réparer les ascenseurs" in english.text  # no English translation: the original
    assert "إصلاح" not in english.text


async def test_translations_are_refused_to_residents_and_into_the_same_language(client) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a)
    await sign_in(client, world.users["resident_a"])
    assert (
        await post_form(client, f"/proposals/{proposal}/translations", ARABIC)
    ).status_code == 403
    await sign_in(client, world.users["facilitator_a"])
    same = await post_form(
        client, f"/proposals/{proposal}/translations", {**ARABIC, "language": "fr"}
    )
    assert same.status_code == 400
    assert t("This is the language the proposal was written in; choose another one.") in same.text
    odd = await post_form(
        client, f"/proposals/{proposal}/translations", {**ARABIC, "language": "xx"}
    )
    assert odd.status_code == 400
    assert await Translation.count() == 0
