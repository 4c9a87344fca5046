"""One look at the ballot before it is sent for good, without JavaScript (issue 12)."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import add_proposal, build_world, post_form, sign_in, t
from tests.test_votes import add_voters, open_vote_on, open_vote_over, option_ids
from votes import services
from votes.models import Participation, SealedBallot


async def test_the_review_shows_the_choice_stores_nothing_and_sends_on_confirmation(
    client: AsyncClient,
) -> None:
    world = await build_world()
    proposal = await add_proposal(world.table_a, body="Des bancs à l'ombre devant l'école.")
    vote_id = await open_vote_on(client, world, proposal)
    await sign_in(client, world.users["resident_a"], verified=False)
    page = await client.get(f"/votes/{vote_id}")
    assert f'action="/votes/{vote_id}/ballot/review"' in page.text
    assert "Des bancs à l&#39;ombre devant l&#39;école." in page.text  # what is voted on
    assert t("Abstain: you take part without choosing.") in page.text
    review = await post_form(client, f"/votes/{vote_id}/ballot/review", {"choice": "no"})
    assert review.status_code == 200
    assert review.headers["cache-control"] == "no-store"
    assert t("Check your ballot") in review.text
    assert t("Against") in review.text.split('class="review-choices"', 1)[1]
    assert '<input type="hidden" name="choice" value="no">' in review.text
    assert await Participation.count() == 0
    assert await SealedBallot.count() == 0
    # "Change my choices" brings the ballot back as it was filled in.
    edit = await post_form(client, f"/votes/{vote_id}/ballot/review", {"choice": "no", "edit": "1"})
    assert 'value="no" required checked' in edit.text
    assert await Participation.count() == 0
    sent = await post_form(client, f"/votes/{vote_id}/ballot", {"choice": "no", "confirm": "1"})
    assert sent.status_code == 200
    assert t("Your ballot has been counted. Thank you!") in sent.text
    assert (await services.turnout([vote_id]))[vote_id] == 1


async def test_a_wrong_choice_comes_back_to_the_ballot_and_outsiders_are_refused(
    client: AsyncClient,
) -> None:
    world = await build_world()
    vote_id = await open_vote_on(client, world, await add_proposal(world.table_a))
    await sign_in(client, world.users["resident_a"], verified=False)
    wrong = await post_form(client, f"/votes/{vote_id}/ballot/review", {"choice": "peut-être"})
    assert wrong.status_code == 400
    assert f'action="/votes/{vote_id}/ballot/review"' in wrong.text
    await sign_in(client, world.users["resident_b"], verified=False)
    outsider = await post_form(client, f"/votes/{vote_id}/ballot/review", {"choice": "yes"})
    assert outsider.status_code == 403


async def test_graded_ballots_are_reviewed_and_ungraded_ones_warned_first(
    client: AsyncClient,
) -> None:
    world = await build_world()
    ids = [await add_proposal(world.table_a, f"Proposition {i}") for i in range(3)]
    vote_id = await open_vote_over(client, world, ids)
    (voter,) = await add_voters(world, 1)
    await sign_in(client, voter, verified=False)
    options = await option_ids(vote_id)
    graded = {f"grade-{option}": "2" for option in options}
    review = await post_form(client, f"/votes/{vote_id}/ballot/review", graded)
    assert t("Check your ballot") in review.text
    assert review.text.count(t("Good")) >= 3
    one_left = {**graded, f"grade-{options[0]}": ""}
    warned = await post_form(client, f"/votes/{vote_id}/ballot/review", one_left)
    assert 'id="ungraded-warning"' in warned.text
    assert f'action="/votes/{vote_id}/ballot"' in warned.text  # its button sends as it is
    assert await Participation.count() == 0
