from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.decisions import Outcome
from campaigns.models import CampaignVersion
from config.localcache import config_cache
from rewards.models import (
    CampaignCounter,
    Reward,
    UserCounter,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    EndUserFactory,
    TriggerEventFactory,
    TriggerFactory,
)
from tests.rewards.conftest import decisions, messages

pytestmark = pytest.mark.django_db


def spent(campaign, mode="live") -> Decimal:
    return CampaignCounter.objects.get(campaign=campaign, mode=mode).spent


def test_matching_event_earns_the_fixed_reward_once(trigger, process):
    campaign = CampaignFactory(trigger=trigger, slug="welcome", reward_value=Decimal("7.5"))
    event = TriggerEventFactory(trigger=trigger)

    process()
    process()

    reward = Reward.objects.get()
    assert reward.campaign == campaign
    assert reward.trigger_event == event
    assert reward.amount == Decimal("7.50")
    assert reward.unit == "Points"
    assert reward.mode == "live"
    version = CampaignVersion.objects.get(campaign=campaign, version=reward.campaign_version)
    assert version.snapshot["reward_value"] == "7.5"
    assert decisions(event) == {"welcome": Outcome.REWARDED}
    event.refresh_from_db()
    assert event.status == "processed"
    assert spent(campaign) == Decimal("7.5")


def test_condition_false_issues_nothing_and_says_why(trigger, process):
    CampaignFactory(trigger=trigger, slug="big", condition="context.amount >= 100.0")
    event = TriggerEventFactory(trigger=trigger, context={"amount": 20, "currency": "USD"})

    process()

    assert not Reward.objects.exists()
    assert decisions(event) == {"big": Outcome.CONDITION_FALSE}
    assert messages(event) == {"big": "condition is false"}


def test_condition_on_an_absent_optional_field_is_false_not_an_error(trigger, process):
    CampaignFactory(
        trigger=trigger, slug="grocery", condition='context.merchant_category == "5411"'
    )
    event = TriggerEventFactory(trigger=trigger, context={"amount": 20, "currency": "USD"})

    process()

    assert decisions(event) == {"grocery": Outcome.CONDITION_FALSE}
    assert "merchant_category" in messages(event)["grocery"]


def test_percentage_reward_with_cap_and_rounding(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="cashback",
        reward_type="percentage",
        reward_value=Decimal("5"),
        reward_field="amount",
        reward_max=Decimal("10"),
        condition="context.amount >= 20.0",
    )
    small = TriggerEventFactory(trigger=trigger, context={"amount": 20.3, "currency": "USD"})
    large = TriggerEventFactory(trigger=trigger, context={"amount": 500, "currency": "USD"})
    tiny = TriggerEventFactory(trigger=trigger, context={"amount": 19.99, "currency": "USD"})

    process()

    amounts = dict(Reward.objects.values_list("trigger_event_id", "amount"))
    assert amounts == {small.id: Decimal("1.02"), large.id: Decimal("10.00")}  # 1.015 -> 1.02
    assert decisions(tiny) == {"cashback": Outcome.CONDITION_FALSE}


def test_rounding_mode_is_the_campaigns(trigger, process):
    CampaignFactory(
        trigger=trigger,
        reward_type="percentage",
        reward_value=Decimal("5"),
        reward_field="amount",
        rounding="ROUND_DOWN",
    )
    TriggerEventFactory(trigger=trigger, context={"amount": 20.3, "currency": "USD"})

    process()

    assert Reward.objects.get().amount == Decimal("1.01")


def test_reward_minimum_lifts_small_rewards(trigger, process):
    CampaignFactory(
        trigger=trigger,
        reward_type="percentage",
        reward_value=Decimal("1"),
        reward_field="amount",
        reward_min=Decimal("0.50"),
    )
    TriggerEventFactory(trigger=trigger, context={"amount": 3, "currency": "USD"})

    process()

    assert Reward.objects.get().amount == Decimal("0.50")


def test_bounds_finer_than_the_unit_hold_after_rounding(trigger, process):
    CampaignFactory(
        trigger=trigger, slug="max", reward_value=Decimal("3"), reward_max=Decimal("2.505")
    )
    CampaignFactory(
        trigger=trigger, slug="min", reward_value=Decimal("0.001"), reward_min=Decimal("0.004")
    )
    TriggerEventFactory(trigger=trigger)

    process()

    amounts = {r.campaign.slug: r.amount for r in Reward.objects.select_related("campaign")}
    # Never above the maximum, never rounded to nothing below the minimum.
    assert amounts == {"max": Decimal("2.50"), "min": Decimal("0.01")}


def test_an_amount_too_large_to_store_is_that_campaigns_error_only(trigger, process):
    CampaignFactory(
        trigger=trigger, slug="huge", reward_type="expression", reward_expression="1e30"
    )
    CampaignFactory(trigger=trigger, slug="plain", reward_value=Decimal("5"))
    event = TriggerEventFactory(trigger=trigger)

    process()

    assert decisions(event) == {"huge": Outcome.ERROR, "plain": Outcome.REWARDED}
    event.refresh_from_db()
    assert event.status == "processed"
    assert "largest amount" in messages(event)["huge"]


def test_expression_reward_uses_user_attributes(trigger, process):
    CampaignFactory(
        trigger=trigger,
        reward_type="expression",
        reward_expression='context.amount * (user.tier == "gold" ? 0.10 : 0.05)',
    )
    gold = EndUserFactory(partnership=trigger.partnership, attributes={"tier": "gold"})
    plain = EndUserFactory(partnership=trigger.partnership, attributes={"tier": "basic"})
    TriggerEventFactory(trigger=trigger, end_user=gold, context={"amount": 100, "currency": "USD"})
    TriggerEventFactory(trigger=trigger, end_user=plain, context={"amount": 100, "currency": "USD"})

    process()

    amounts = dict(Reward.objects.values_list("end_user_id", "amount"))
    assert amounts == {gold.id: Decimal("10.00"), plain.id: Decimal("5.00")}


def test_zero_or_negative_amount_issues_nothing(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="refundish",
        reward_type="expression",
        reward_expression="context.amount - 50.0",
    )
    event = TriggerEventFactory(trigger=trigger, context={"amount": 20, "currency": "USD"})

    process()

    assert not Reward.objects.exists()
    assert decisions(event) == {"refundish": Outcome.ZERO_AMOUNT}


def test_rule_error_in_one_campaign_does_not_stop_the_others(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="broken",
        priority=10,
        reward_type="expression",
        reward_expression="context.amount / (context.amount - context.amount)",
    )
    CampaignFactory(trigger=trigger, slug="fine", priority=1)
    event = TriggerEventFactory(trigger=trigger)

    process()

    assert decisions(event) == {"broken": Outcome.ERROR, "fine": Outcome.REWARDED}
    assert event.status == "processed"
    assert Reward.objects.get().campaign.slug == "fine"


def test_campaigns_run_in_priority_order_and_exclusive_wins(trigger, process):
    CampaignFactory(trigger=trigger, slug="low", priority=1)
    CampaignFactory(trigger=trigger, slug="top", priority=100, exclusive=True)
    CampaignFactory(trigger=trigger, slug="mid", priority=50)
    event = TriggerEventFactory(trigger=trigger)

    process()

    assert list(decisions(event).items()) == [
        ("top", Outcome.REWARDED),
        ("mid", Outcome.SKIPPED_EXCLUSIVE),
        ("low", Outcome.SKIPPED_EXCLUSIVE),
    ]
    assert Reward.objects.get().campaign.slug == "top"


def test_exclusive_campaign_that_does_not_reward_lets_others_run(trigger, process):
    CampaignFactory(trigger=trigger, slug="top", priority=100, exclusive=True, condition="false")
    CampaignFactory(trigger=trigger, slug="low", priority=1)
    event = TriggerEventFactory(trigger=trigger)

    process()

    assert decisions(event) == {"top": Outcome.CONDITION_FALSE, "low": Outcome.REWARDED}


def test_schedule_is_judged_at_occurred_at(trigger, process):
    now = timezone.now()
    CampaignFactory(
        trigger=trigger,
        slug="november",
        starts_at=now - timedelta(days=10),
        ends_at=now - timedelta(days=1),
    )
    inside = TriggerEventFactory(trigger=trigger, occurred_at=now - timedelta(days=2))
    after = TriggerEventFactory(trigger=trigger, occurred_at=now)

    process()

    assert decisions(inside) == {"november": Outcome.REWARDED}
    assert decisions(after) == {"november": Outcome.OUTSIDE_SCHEDULE}


def test_draft_paused_and_ended_campaigns_are_not_candidates(trigger, process):
    for status in ("draft", "paused", "ended"):
        CampaignFactory(trigger=trigger, status=status)
    event = TriggerEventFactory(trigger=trigger)

    process()

    assert decisions(event) == {}
    assert not Reward.objects.exists()


def test_campaigns_of_other_triggers_are_not_candidates(trigger, process):
    signup = TriggerFactory(partnership=trigger.partnership, name="user_signup")
    CampaignFactory(trigger=signup, slug="welcome")
    event = TriggerEventFactory(trigger=trigger)

    process()

    assert decisions(event) == {}


def test_budget_stops_issuance_exactly_at_the_limit(trigger, process):
    campaign = CampaignFactory(trigger=trigger, slug="pot", budget=Decimal("30"))
    events = TriggerEventFactory.create_batch(5, trigger=trigger)

    process()

    assert Reward.objects.count() == 3
    assert spent(campaign) == Decimal("30")
    assert [decisions(e)["pot"] for e in events].count(Outcome.BUDGET_EXHAUSTED) == 2


def test_total_count_cap(trigger, process):
    CampaignFactory(trigger=trigger, slug="first-two", max_rewards=2)
    events = TriggerEventFactory.create_batch(4, trigger=trigger)

    process()

    assert Reward.objects.count() == 2
    assert [decisions(e)["first-two"] for e in events].count(Outcome.COUNT_CAP_REACHED) == 2


def test_per_user_count_and_amount_caps(trigger, process):
    CampaignFactory(trigger=trigger, slug="once", max_rewards_per_user=1)
    CampaignFactory(trigger=trigger, slug="up-to-25", max_amount_per_user=Decimal("25"))
    user = EndUserFactory(partnership=trigger.partnership)
    events = TriggerEventFactory.create_batch(3, trigger=trigger, end_user=user)
    other = TriggerEventFactory(trigger=trigger)

    process()

    outcomes = [decisions(event) for event in events]
    assert [o["once"] for o in outcomes] == [
        Outcome.REWARDED,
        Outcome.USER_CAP_REACHED,
        Outcome.USER_CAP_REACHED,
    ]
    assert [o["up-to-25"] for o in outcomes] == [
        Outcome.REWARDED,
        Outcome.REWARDED,
        Outcome.USER_CAP_REACHED,
    ]
    assert decisions(other) == {"once": Outcome.REWARDED, "up-to-25": Outcome.REWARDED}


def test_per_period_cap_counts_calendar_days_of_occurred_at(trigger, process):
    CampaignFactory(trigger=trigger, slug="daily", max_rewards_per_user_per_period=1, period="day")
    user = EndUserFactory(partnership=trigger.partnership)
    monday = timezone.now().replace(hour=10) - timedelta(days=3)
    first = TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=monday)
    same_day = TriggerEventFactory(
        trigger=trigger, end_user=user, occurred_at=monday + timedelta(hours=5)
    )
    next_day = TriggerEventFactory(
        trigger=trigger, end_user=user, occurred_at=monday + timedelta(days=1)
    )

    process()

    assert decisions(first) == {"daily": Outcome.REWARDED}
    assert decisions(same_day) == {"daily": Outcome.PERIOD_CAP_REACHED}
    assert decisions(next_day) == {"daily": Outcome.REWARDED}


def test_test_mode_rewards_never_touch_live_budgets(trigger, process):
    campaign = CampaignFactory(trigger=trigger, slug="pot", budget=Decimal("10"))
    test_event = TriggerEventFactory(trigger=trigger, mode="test")
    live_event = TriggerEventFactory(trigger=trigger, mode="live")

    process()

    assert decisions(test_event) == {"pot": Outcome.REWARDED}
    assert decisions(live_event) == {"pot": Outcome.REWARDED}
    assert dict(Reward.objects.values_list("mode", "amount")) == {
        "test": Decimal("10"),
        "live": Decimal("10"),
    }
    assert spent(campaign, "live") == spent(campaign, "test") == Decimal("10")


def test_evaluating_an_event_again_issues_nothing_twice(trigger, process):
    CampaignFactory(trigger=trigger, slug="once")
    event = TriggerEventFactory(trigger=trigger)
    process()
    type(event).objects.filter(pk=event.pk).update(status="queued")

    process()

    assert Reward.objects.count() == 1
    assert decisions(event) == {"once": Outcome.REWARDED}
    assert "already rewarded" in messages(event)["once"]


def test_calendar_periods_are_the_partnerships_days(trigger, process):
    partnership = trigger.partnership
    partnership.time_zone = "America/New_York"
    partnership.save()
    campaign = CampaignFactory(
        trigger=trigger, slug="daily", max_rewards_per_user_per_period=1, period="day"
    )
    user = EndUserFactory(partnership=partnership)
    new_york = ZoneInfo("America/New_York")
    times = [
        datetime(2026, 11, 20, 9, tzinfo=new_york),
        datetime(2026, 11, 20, 21, tzinfo=new_york),  # already the 21st in UTC
        datetime(2026, 11, 21, 9, tzinfo=new_york),
    ]
    events = [TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=t) for t in times]

    process()

    assert [decisions(e)["daily"] for e in events] == [
        Outcome.REWARDED,
        Outcome.PERIOD_CAP_REACHED,
        Outcome.REWARDED,
    ]
    periods = UserCounter.objects.filter(campaign=campaign).values_list("period", flat=True)
    assert set(periods) == {"", "2026-11-20", "2026-11-21"}


def test_event_facts_make_third_purchase_rules_one_line(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="third",
        facts=[{"name": "purchases_30d", "aggregate": "count", "window_days": 30}],
        condition="facts.purchases_30d == 3",
    )
    user = EndUserFactory(partnership=trigger.partnership)
    now = timezone.now()
    old = TriggerEventFactory(
        trigger=trigger, end_user=user, occurred_at=now - timedelta(days=40), status="processed"
    )
    events = [
        TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=now - timedelta(days=d))
        for d in (9, 5, 1, 0)
    ]

    process()

    assert [decisions(e)["third"] for e in events] == [
        Outcome.CONDITION_FALSE,
        Outcome.CONDITION_FALSE,
        Outcome.REWARDED,
        Outcome.CONDITION_FALSE,
    ]
    assert old.pk not in Reward.objects.values_list("trigger_event_id", flat=True)


def test_sum_fact_over_a_week(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="big-spender",
        facts=[{"name": "spend_7d", "aggregate": "sum", "field": "amount", "window_days": 7}],
        condition="facts.spend_7d >= 500.0",
    )
    user = EndUserFactory(partnership=trigger.partnership)
    now = timezone.now()
    TriggerEventFactory(
        trigger=trigger,
        end_user=user,
        occurred_at=now - timedelta(days=2),
        context={"amount": 450, "currency": "USD"},
        status="processed",
    )
    crossing = TriggerEventFactory(
        trigger=trigger, end_user=user, occurred_at=now, context={"amount": 60, "currency": "USD"}
    )

    process()

    assert decisions(crossing) == {"big-spender": Outcome.REWARDED}


def test_two_campaigns_may_give_one_name_to_different_facts(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="loyal",
        facts=[{"name": "n", "aggregate": "count", "window_days": 30}],
        condition="facts.n >= 3",
    )
    CampaignFactory(
        trigger=trigger,
        slug="first-today",
        facts=[{"name": "n", "aggregate": "count", "window_days": 1}],
        condition="facts.n == 1",
    )
    user = EndUserFactory(partnership=trigger.partnership)
    now = timezone.now()
    for days in (20, 10):
        TriggerEventFactory(
            trigger=trigger,
            end_user=user,
            occurred_at=now - timedelta(days=days),
            status="processed",
        )
    event = TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=now)

    process()

    # Three purchases in 30 days, the first one today: both conditions hold.
    assert decisions(event) == {"loyal": Outcome.REWARDED, "first-today": Outcome.REWARDED}


def test_late_event_facts_are_computed_as_of_its_occurred_at(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="first-ever",
        facts=[{"name": "purchases", "aggregate": "count", "window_days": 365}],
        condition="facts.purchases == 1",
    )
    user = EndUserFactory(partnership=trigger.partnership)
    now = timezone.now()
    TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=now, status="processed")
    # Arrives later, but happened before the processed one: as of then, it was the first.
    late = TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=now - timedelta(days=3))

    process()

    assert decisions(late) == {"first-ever": Outcome.REWARDED}


def test_facts_count_only_the_same_mode(trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="first",
        facts=[{"name": "n", "aggregate": "count", "window_days": 30}],
        condition="facts.n == 1",
    )
    user = EndUserFactory(partnership=trigger.partnership)
    TriggerEventFactory(trigger=trigger, end_user=user, mode="test", status="processed")
    live = TriggerEventFactory(trigger=trigger, end_user=user, mode="live")

    process()

    assert decisions(live) == {"first": Outcome.REWARDED}


def test_test_key_event_end_to_end_is_a_test_reward(api_client, trigger, process):
    CampaignFactory(trigger=trigger)
    key = ApiKeyFactory(partnership=trigger.partnership, mode="test")
    api_client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        {
            "trigger_name": trigger.name,
            "external_user_id": "t",
            "transaction_context": {"amount": 1, "currency": "USD"},
        },
        format="json",
        HTTP_X_API_KEY=key.plaintext,
    )

    process()

    assert Reward.objects.get().mode == "test"


def test_a_poison_event_is_failed_with_its_error_and_the_rest_of_the_batch_goes_on(
    trigger, process
):
    CampaignFactory(
        trigger=trigger,
        slug="cashback",
        reward_type="percentage",
        reward_value=Decimal("5"),
        reward_field="amount",
    )
    hooks = WebhookEndpoint.objects.create(
        partnership=trigger.partnership,
        url="https://example.test/hooks",
        secret="s",
        event_types=["trigger_event.failed"],
    )
    fine = TriggerEventFactory(trigger=trigger, context={"amount": 100, "currency": "USD"})
    # Each reward fits (9e11), but not both in the campaign's spent counter (numeric(18, 6)):
    # the database refuses the whole batch, then the second of them on its own.
    big = [
        TriggerEventFactory(trigger=trigger, context={"amount": 1.8e13, "currency": "USD"})
        for _ in range(2)
    ]

    process()

    for event in (fine, *big):
        event.refresh_from_db()
    (poison,) = [event for event in big if event.status == "failed"]
    assert "numeric field overflow" in poison.error
    assert fine.status == "processed"
    assert {r.trigger_event_id for r in Reward.objects.all()} == {
        fine.id,
        *(e.id for e in big if e is not poison),
    }
    counter = CampaignCounter.objects.get(mode="live")
    assert counter.spent == Decimal("900000000005")
    (failed,) = WebhookDelivery.objects.filter(endpoint=hooks)
    assert failed.payload["type"] == "trigger_event.failed"
    assert failed.payload["data"]["trigger_event_id"] == str(poison.id)


def test_evaluating_again_a_campaign_whose_guard_no_longer_holds_still_says_rewarded(
    trigger, process
):
    first = CampaignFactory(trigger=trigger, slug="first", priority=2, exclusive=True)
    CampaignFactory(trigger=trigger, slug="second", condition='context.merchant_category == "5999"')
    event = TriggerEventFactory(
        trigger=trigger, context={"amount": 25, "currency": "USD", "merchant_category": "5411"}
    )
    process()
    assert decisions(event) == {"first": Outcome.REWARDED, "second": Outcome.SKIPPED_EXCLUSIVE}
    # Edited since: its guard now sets the event aside; the event is evaluated again.
    type(first).objects.filter(pk=first.pk).update(condition='context.merchant_category == "5999"')
    config_cache.invalidate()
    type(event).objects.filter(pk=event.pk).update(status="queued")

    process()

    assert decisions(event) == {"first": Outcome.REWARDED, "second": Outcome.SKIPPED_EXCLUSIVE}
    assert "already rewarded" in messages(event)["first"]
    assert Reward.objects.count() == 1


@pytest.mark.parametrize("items", [[], [""], ["", "2026-W47"], ['a"b', "c\\d", "e,f", "{g}"]])
def test_the_copy_rows_user_periods_read_back_as_written(items):
    """The per-user periods a reward was counted in (written into the COPY as a text[]
    literal) are what a reversal reads back to restore those counters."""
    from django.db import connection

    from rewards.services.evaluation import _text_array

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [_text_array(items)])
        assert cursor.fetchone()[0] == items
