"""Pilot's rewards for support: filters, and "Reverse" (full or partial, with a reason) through
the partner API's own reversal service, with the operator recorded; its refusals are shown at
the form, never a 500; reversals visible on the reward and in the Reversals list."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from partnerships.models import AuditEntry
from rewards.models import CampaignCounter, Reversal, Reward
from tests.factories import (
    CampaignFactory,
    EndUserFactory,
    PartnershipFactory,
    RewardFactory,
    TriggerEventFactory,
    TriggerFactory,
)
from tests.pilot_support import page_text, pilot_operator

pytestmark = pytest.mark.django_db

REWARDS = "/pilot/rewards/reward/"


@pytest.fixture
def support(django_user_model, partnership):
    return pilot_operator(
        django_user_model,
        "support",
        partnerships=[partnership],
        perms=("rewards.view_reward", "rewards.view_rewardadjustment", "rewards.reverse_reward"),
    )


@pytest.fixture
def reward(trigger, process) -> Reward:
    """A live reward of 10.00 issued by the workers (counters and all)."""
    CampaignFactory(trigger=trigger, slug="cashback", reward_value=Decimal("10"))
    user = EndUserFactory(partnership=trigger.partnership, external_user_id="alice")
    event = TriggerEventFactory(trigger=trigger, end_user=user)
    process()
    return Reward.objects.get(trigger_event=event)


def listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


def shown_form(client, reward) -> dict:
    """The hidden fields of the Reverse form as Pilot shows it (none if it is refused)."""
    response = client.get(f"{REWARDS}{reward.pk}/reverse/")
    if response.status_code != 200:
        return {}
    form = response.context["form"]
    return {name: str(form[name].value()) for name in ("token", "reversed_amount")}


def reverse(client, reward, form=None, **data):
    """Opens the Reverse form (or submits ``form``, one opened before) and submits it."""
    form = shown_form(client, reward) if form is None else form
    return client.post(f"{REWARDS}{reward.pk}/reverse/", {"reason": "refund", **form, **data})


def spent(reward) -> Decimal:
    return CampaignCounter.objects.get(campaign=reward.campaign, mode=reward.mode).spent


# --- Filters ----------------------------------------------------------------------------------


def test_filters_by_campaign_trigger_mode_status_dates_and_exact_user(support, partnership):
    now = timezone.now()
    campaign = CampaignFactory(trigger=TriggerFactory(partnership=partnership, name="purchase"))
    other = CampaignFactory(trigger=TriggerFactory(partnership=partnership, name="signup"))
    alice = EndUserFactory(partnership=partnership, external_user_id="alice")
    hers = RewardFactory(campaign=campaign, end_user=alice, issued_at=now - timedelta(days=3))
    test_mode = RewardFactory(campaign=campaign, mode="test", issued_at=now)
    reversed_ = RewardFactory(campaign=other, status="reversed", issued_at=now)

    assert listed(support.get(REWARDS, {"campaign__id__exact": other.pk})) == {reversed_.pk}
    assert listed(support.get(REWARDS, {"campaign__trigger__id__exact": campaign.trigger_id})) == {
        hers.pk,
        test_mode.pk,
    }
    assert listed(support.get(REWARDS, {"mode__exact": "test"})) == {test_mode.pk}
    assert listed(support.get(REWARDS, {"status__exact": "reversed"})) == {reversed_.pk}
    since = (now - timedelta(days=1)).date().isoformat()
    assert listed(support.get(REWARDS, {"issued_at__gte": since})) == {
        test_mode.pk,
        reversed_.pk,
    }
    assert listed(support.get(REWARDS, {"external_user_id": "alice"})) == {hers.pk}
    assert listed(support.get(REWARDS, {"external_user_id": "ali"})) == set()


# --- Reverse ----------------------------------------------------------------------------------


def test_a_full_reversal_from_pilot_uses_the_api_service_and_records_the_operator(
    support, reward, partner_client
):
    page = page_text(support.get(f"{REWARDS}{reward.pk}/change/"))
    response = reverse(support, reward)

    assert f"{REWARDS}{reward.pk}/reverse/" in page
    assert response.status_code == 302
    reward.refresh_from_db()
    assert (reward.status, reward.reversed_amount) == ("reversed", Decimal("10"))
    assert spent(reward) == 0  # given back to the budget, as the API's reversal does
    reversal = Reversal.objects.get()
    assert (reversal.operator, reversal.reason) == (support.user, "refund")
    entry = AuditEntry.objects.get(action="reward.reverse")
    assert (entry.actor, entry.target_id, entry.mode) == (support.user, str(reward.pk), "live")
    # The partner sees it through the API as any reversal.
    data = partner_client.get(
        f"/partnerships/{reward.partnership_id}/trigger-events/{reward.trigger_event_id}"
    ).json()["data"]
    assert [r["reason"] for r in data["reversals"]] == ["refund"]


def test_a_partial_reversal_takes_back_the_amount_and_shows_on_the_reward_and_in_reversals(
    support, reward
):
    response = reverse(support, reward, amount="3.5", reason="partial refund")

    reward.refresh_from_db()
    assert response.status_code == 302
    assert (reward.status, reward.reversed_amount) == ("issued", Decimal("3.5"))
    assert spent(reward) == Decimal("6.5")
    detail = page_text(support.get(f"{REWARDS}{reward.pk}/change/"))
    assert "-3.50 Points" in detail and "partial refund" in detail and "support" in detail
    reversals = page_text(support.get("/pilot/rewards/rewardadjustment/"))
    assert "partial refund" in reversals and "support" in reversals


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("12", "At most 10 can be reversed"),
        ("abc", "Enter a number."),
        ("-1", "Ensure this value is greater than or equal to 0.000001."),
        ("1.005", "Use at most 0.01 precision"),
        ("1e400", "Ensure that there are no more than 18 digits in total."),
    ],
)
def test_a_refused_amount_is_shown_at_the_field_and_nothing_changes(support, reward, amount, shown):
    response = reverse(support, reward, amount=amount)

    assert response.status_code == 400
    assert shown in page_text(response)
    reward.refresh_from_db()
    assert reward.reversed_amount == 0
    assert not Reversal.objects.exists() and not AuditEntry.objects.exists()


def test_a_reward_already_reversed_is_refused_with_a_message(support, reward):
    reverse(support, reward)

    page = page_text(support.get(f"{REWARDS}{reward.pk}/change/"))
    again = reverse(support, reward)

    assert f"{REWARDS}{reward.pk}/reverse/" not in page
    assert again.status_code == 400
    assert "The reward is already reversed" in page_text(again)
    assert Reversal.objects.count() == 1


def test_a_form_submitted_twice_reverses_once_and_says_it_was_already_done(support, reward):
    form = shown_form(support, reward)

    first = reverse(support, reward, form, amount="3")
    second = reverse(support, reward, form, amount="3")

    assert (first.status_code, second.status_code) == (302, 302)
    assert "Already done" in page_text(support.get(second.url))
    reward.refresh_from_db()
    assert reward.reversed_amount == Decimal("3")
    assert spent(reward) == Decimal("7")
    assert Reversal.objects.count() == 1
    assert AuditEntry.objects.filter(action="reward.reverse").count() == 1


def test_a_form_shown_before_another_reversal_is_refused_then_accepted_as_shown_again(
    support, reward
):
    stale = shown_form(support, reward)
    assert reverse(support, reward, amount="3").status_code == 302  # another operator

    refused = reverse(support, reward, stale, amount="2")

    assert refused.status_code == 400
    text = page_text(refused)
    assert "The reward was reversed meanwhile: 3 of it is reversed now" in text
    reward.refresh_from_db()
    assert reward.reversed_amount == Decimal("3")
    assert Reversal.objects.count() == 1
    # The page now shows what remains (7) and carries it: submitted again, it goes through.
    assert "7.00" in text
    again = {
        "token": stale["token"],
        "reversed_amount": refused.context["form"]["reversed_amount"].value(),
    }
    assert reverse(support, reward, again, amount="2").status_code == 302
    reward.refresh_from_db()
    assert reward.reversed_amount == Decimal("5")


def test_a_form_without_its_token_is_refused_with_a_message(support, reward):
    response = reverse(support, reward, {}, amount="3")

    assert response.status_code == 400
    assert "This form is out of date: open Reverse again." in page_text(response)
    assert not Reversal.objects.exists()


def test_reversing_needs_the_reverse_permission(django_user_model, partnership, reward):
    viewer = pilot_operator(django_user_model, "viewer", partnerships=[partnership])

    page = page_text(viewer.get(f"{REWARDS}{reward.pk}/change/"))
    response = reverse(viewer, reward)

    assert f"{REWARDS}{reward.pk}/reverse/" not in page
    assert response.status_code == 403
    reward.refresh_from_db()
    assert reward.status == "issued"


def test_an_operator_of_a_cannot_see_or_reverse_bs_rewards(support, reward):
    theirs = RewardFactory(campaign=CampaignFactory(trigger__partnership=PartnershipFactory()))

    assert listed(support.get(REWARDS)) == {reward.pk}
    assert support.get(f"{REWARDS}{theirs.pk}/change/").status_code == 404
    assert reverse(support, theirs).status_code == 404
    assert not Reversal.objects.exists()
    assert (
        "/pilot/rewards/rewardadjustment/"
        and support.get("/pilot/rewards/rewardadjustment/").status_code == 200
    )


def test_the_reverse_page_of_a_reversed_reward_says_so_not_a_500(support, reward):
    reverse(support, reward)

    response = support.get(f"{REWARDS}{reward.pk}/reverse/")

    assert response.status_code == 200
    assert "The reward is already reversed" in page_text(response)
