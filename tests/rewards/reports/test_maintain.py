"""The aggregates are kept by the transactions that move the figures: issuing, reversing,
recording outcomes; events received are counted behind a watermark."""

import importlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import CandidateList
from campaigns.selectors import trigger_event_decision_records
from config.errors import ApplicationError, ErrorCode
from rewards.models import Reward
from rewards.reports.calendar import local_midnight
from rewards.reports.maintain import (
    ACTIVITY_KEY,
    MONEY_KEY,
    bucket_of,
    reports_count_received,
    reports_received_through,
)
from rewards.reports.models import ActivityBucket, MoneyBucket
from rewards.reports.rebuild import reports_rebuild
from rewards.reports.selectors import (
    MAX_REPORT_DAYS,
    campaign_budget_state,
    liability_at,
    report_days,
    report_scope,
    report_totals,
)
from rewards.services.evaluation import trigger_events_evaluate
from tests.factories import CampaignFactory, TriggerEventFactory
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


def today_scope(partnership, mode="live"):
    today = timezone.now().astimezone(ZoneInfo(partnership.time_zone)).date()
    return report_scope(partnership=partnership, mode=mode, first_day=today, last_day=today)


@pytest.fixture
def reverse(partner_client, partnership):
    def call(body: dict):
        response = partner_client.post(
            f"/partnerships/{partnership.id}/triggers/reverse", body, format="json"
        )
        assert response.status_code == 200, response.json()
        return response

    return call


def test_a_bucket_is_the_quarter_hour_a_moment_falls_in():
    moment = datetime(2026, 12, 7, 18, 29, 59, 999999, tzinfo=UTC)

    assert bucket_of(moment) == datetime(2026, 12, 7, 18, 15, tzinfo=UTC)
    assert bucket_of(moment + timedelta(microseconds=1)) == datetime(
        2026, 12, 7, 18, 30, tzinfo=UTC
    )


def test_issued_and_reversed_rewards_are_counted_in_the_day_they_happened(
    trigger, process, reverse
):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("4.50"))
    first = TriggerEventFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    process()
    reverse({"trigger_event_id": str(first.id), "amount": "1.25"})

    totals = report_totals(scope=today_scope(trigger.partnership))

    (money,) = totals.money
    assert (money.unit, money.issued_count, money.issued_amount) == ("Points", 2, Decimal("9"))
    assert (money.reversed_count, money.reversed_amount) == (1, Decimal("1.25"))
    assert money.net_amount == Decimal("7.75")
    assert totals.activity.events_evaluated == 2
    assert totals.activity.events_rewarded == 2
    assert totals.activity.conversion == 1
    assert totals.decisions == {"rewarded": 2}
    assert totals.unique_users == 2
    assert MoneyBucket.objects.get(kind="issued").campaign_id == campaign.id


def test_a_test_key_reversal_and_test_events_never_reach_the_live_report(trigger, process):
    CampaignFactory(trigger=trigger, reward_value=Decimal("3"))
    TriggerEventFactory(trigger=trigger, mode="test")
    process()

    live = report_totals(scope=today_scope(trigger.partnership, "live"))
    test = report_totals(scope=today_scope(trigger.partnership, "test"))

    assert live.money[0].issued_count == 0
    assert live.activity.events_evaluated == 0
    assert test.money[0].issued_amount == Decimal("3")
    assert test.activity.events_evaluated == 1


def test_decisions_are_counted_by_outcome_and_conversion_follows(trigger, process):
    CampaignFactory(trigger=trigger, condition="context.amount >= 30.0", reward_value=Decimal("1"))
    TriggerEventFactory(trigger=trigger, context={"amount": 40, "currency": "USD"})
    TriggerEventFactory(trigger=trigger, context={"amount": 10, "currency": "USD"})
    TriggerEventFactory(trigger=trigger, context={"amount": 12, "currency": "USD"})
    process()

    totals = report_totals(scope=today_scope(trigger.partnership))

    assert totals.decisions == {"condition_false": 2, "rewarded": 1}
    assert totals.activity.events_evaluated == 3
    assert totals.activity.events_rewarded == 1
    assert totals.activity.conversion == Decimal(1) / Decimal(3)


def test_an_event_that_fails_is_counted_failed_not_evaluated(trigger, process, settings):
    settings.EVENT_MAX_ATTEMPTS = 1
    CampaignFactory(trigger=trigger)
    poison = TriggerEventFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)

    def evaluate_unless_poisoned(batch):
        if poison in batch:
            raise RuntimeError("this event breaks the evaluation")
        return trigger_events_evaluate(batch)

    process(processor=evaluate_unless_poisoned)

    activity = report_totals(scope=today_scope(trigger.partnership)).activity
    assert (activity.events_evaluated, activity.events_failed) == (1, 1)


def test_liability_as_of_any_moment_counts_what_happened_up_to_it(trigger, process, reverse):
    CampaignFactory(trigger=trigger, reward_value=Decimal("10"))
    event = TriggerEventFactory(trigger=trigger)
    process()
    reverse({"trigger_event_id": str(event.id), "amount": "4"})
    reward = Reward.objects.get()
    reversed_at = reward.adjustments.get().created_at

    def owed(at):
        return liability_at(partnership=trigger.partnership, mode="live", at=at)

    assert owed(reward.issued_at - timedelta(microseconds=1)) == {"Points": Decimal(0)}
    assert owed(reward.issued_at) == {"Points": Decimal("10")}
    assert owed(reversed_at - timedelta(microseconds=1)) == {"Points": Decimal("10")}
    assert owed(reversed_at) == {"Points": Decimal("6")}
    assert owed(reversed_at + timedelta(days=400)) == {"Points": Decimal("6")}
    assert liability_at(partnership=trigger.partnership, mode="test", at=reversed_at) == {
        "Points": Decimal(0)
    }


def test_events_received_are_counted_once_behind_the_watermark(trigger, settings):
    settle = timedelta(seconds=settings.REPORTS_RECEIVED_SETTLE_SECONDS)
    now = timezone.now()
    TriggerEventFactory.create_batch(3, trigger=trigger, received_at=now - settle * 2)
    TriggerEventFactory(trigger=trigger, received_at=now)  # not settled yet

    assert reports_count_received(now=now) == now - settle
    assert reports_count_received(now=now) == now - settle  # nothing new: counted once

    def received():
        return report_totals(scope=today_scope(trigger.partnership)).activity.events_received

    assert received() == 3
    assert reports_received_through() == now - settle
    reports_count_received(now=now + settle + timedelta(seconds=1))
    assert received() == 4


def test_a_campaign_filter_counts_that_campaigns_decisions_as_its_events(trigger, process):
    CampaignFactory(trigger=trigger, slug="all", reward_value=Decimal("1"))
    picky = CampaignFactory(
        trigger=trigger, slug="picky", condition="context.amount >= 30.0", reward_value=Decimal("2")
    )
    TriggerEventFactory(trigger=trigger, context={"amount": 40, "currency": "USD"})
    TriggerEventFactory(trigger=trigger, context={"amount": 10, "currency": "USD"})
    process()
    today = timezone.now().astimezone(ZoneInfo(trigger.partnership.time_zone)).date()

    scope = report_scope(
        partnership=trigger.partnership,
        mode="live",
        first_day=today,
        last_day=today,
        campaign_ids=[picky.id],
    )
    (row,) = report_days(scope=scope)

    assert (row.activity.events_evaluated, row.activity.events_rewarded) == (2, 1)
    assert row.money[0].issued_amount == Decimal("2")


def test_a_range_that_ends_before_it_starts_or_is_too_long_is_refused(partnership):
    with pytest.raises(ApplicationError) as backwards:
        report_scope(
            partnership=partnership,
            mode="live",
            first_day=date(2026, 5, 2),
            last_day=date(2026, 5, 1),
        )
    with pytest.raises(ApplicationError) as too_long:
        report_scope(
            partnership=partnership,
            mode="live",
            first_day=date(2025, 1, 1),
            last_day=date(2025, 1, 1) + timedelta(days=MAX_REPORT_DAYS),
        )

    assert (backwards.value.status, backwards.value.code) == (422, ErrorCode.INVALID_RANGE)
    assert (too_long.value.status, too_long.value.code) == (422, ErrorCode.RANGE_TOO_LONG)


def test_a_local_day_that_starts_in_a_dst_gap_starts_when_the_clocks_resume():
    # Cuba moves its clocks from 00:00 to 01:00 on the second Sunday of March.
    start = local_midnight(date(2026, 3, 8), ZoneInfo("America/Havana"))

    assert start.astimezone(UTC) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)


def test_the_upserts_name_the_columns_of_the_tables():
    money = {f.column for f in MoneyBucket._meta.concrete_fields}
    activity = {f.column for f in ActivityBucket._meta.concrete_fields}

    assert set(MONEY_KEY) | {"id", "count", "amount"} == money
    assert set(ACTIVITY_KEY) | {"id", "count"} == activity


def test_the_migrations_backfill_gives_what_the_pipeline_keeps(trigger, process, reverse):
    """Rows from before the aggregates existed are counted by the migration as the pipeline
    would have counted them."""
    CampaignFactory(trigger=trigger, reward_value=Decimal("2"), max_rewards=2)
    CampaignFactory(trigger=trigger, condition="context.amount >= 30.0", reward_value=Decimal("1"))
    events = TriggerEventFactory.create_batch(3, trigger=trigger)
    TriggerEventFactory(trigger=trigger, mode="test")
    process()
    reverse({"trigger_event_id": str(events[0].id), "amount": "1.5"})
    kept_money = _rows(MoneyBucket)
    kept_activity = _rows(ActivityBucket)
    assert kept_money and kept_activity
    MoneyBucket.objects.all().delete()
    ActivityBucket.objects.all().delete()
    # Rows from then held their decisions as arrays (the compact form came with issue 13).
    for event in TriggerEvent.objects.all():
        event.decisions = trigger_event_decision_records(event=event)
        event.save(update_fields=["decisions"])

    backfill = importlib.import_module("rewards.migrations.0009_reports")
    with connection.cursor() as cursor:
        cursor.execute(backfill.BACKFILL_MONEY)
        cursor.execute(backfill.BACKFILL_ACTIVITY)

    assert _rows(MoneyBucket) == kept_money
    assert _rows(ActivityBucket) == kept_activity


def _rows(model) -> list[tuple]:
    fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
    return sorted(model.objects.values_list(*fields), key=str)


def test_a_rebuild_from_the_rows_gives_what_the_pipeline_keeps(trigger, process, reverse):
    CampaignFactory(trigger=trigger, reward_value=Decimal("2"), max_rewards=2)
    events = TriggerEventFactory.create_batch(
        3, trigger=trigger, received_at=timezone.now() - timedelta(minutes=5)
    )
    process()
    reverse({"trigger_event_id": str(events[1].id)})
    reports_count_received()
    kept = (_rows(MoneyBucket), _rows(ActivityBucket))

    reports_rebuild(partnership_ids=[trigger.partnership_id])

    assert (_rows(MoneyBucket), _rows(ActivityBucket)) == kept
    assert any(row[-2] == "event.received" for row in kept[1])


def test_a_rebuild_counts_compact_decisions_as_the_pipeline_counted_them(trigger, process):
    """Unlisted campaigns of a compact form's list (condition_false, with or without facts),
    listed ones (rewarded, a cap reached, a condition unmet for an absent field) and a late
    event judged by fewer campaigns (a list of its own)."""
    CampaignFactory(trigger=trigger, reward_value=Decimal("2"), max_rewards=2)
    CampaignFactory(trigger=trigger, condition="context.amount >= 30.0")
    CampaignFactory(
        trigger=trigger,
        condition="context.amount >= 30.0 && facts.n >= 0",
        facts=[{"name": "n", "aggregate": "count", "window_days": 30}],
    )
    CampaignFactory(trigger=trigger, condition='context.merchant_category == "5411"')
    long_ago = timezone.now() - timedelta(days=35)
    ended = CampaignFactory(
        trigger=trigger, starts_at=None, ends_at=timezone.now() - timedelta(days=40)
    )
    TriggerEventFactory.create_batch(3, trigger=trigger)
    TriggerEventFactory(trigger=trigger, context={"amount": 40, "currency": "USD"})
    TriggerEventFactory(trigger=trigger, received_at=long_ago, occurred_at=long_ago)
    process()
    kept = (_rows(MoneyBucket), _rows(ActivityBucket))
    assert any(row[-2] == "decision.condition_false" for row in kept[1])
    assert ended.id in {row[4] for row in kept[1]}
    assert CandidateList.objects.count() == 2  # with the ended campaign, and without

    reports_rebuild(partnership_ids=[trigger.partnership_id])

    assert (_rows(MoneyBucket), _rows(ActivityBucket)) == kept


def test_a_budget_that_would_last_beyond_ten_years_has_no_exhaustion_date(trigger, process):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("0.01"), budget=Decimal("1e4"))
    TriggerEventFactory(trigger=trigger)
    process()

    state = campaign_budget_state(campaign=campaign, mode="live")

    assert state.spent == Decimal("0.01")
    assert state.burn_per_day == Decimal("0.01") / 7
    assert state.projected_exhaustion is None
    assert state.low is False


def test_a_budget_burning_fast_is_low_with_its_exhaustion_date(trigger, process):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("10"), budget=Decimal("100"))
    TriggerEventFactory.create_batch(3, trigger=trigger)
    process()
    today = timezone.now().astimezone(ZoneInfo(trigger.partnership.time_zone)).date()

    state = campaign_budget_state(campaign=campaign, mode="live")

    # 30 in the last week: 30/7 a day, 70 left -> 17 days (rounded up) -> not within a week,
    # and 70% left: not low.
    assert (state.spent, state.left) == (Decimal("30"), Decimal("70"))
    assert state.projected_exhaustion == today + timedelta(days=17)
    assert state.low is False
    TriggerEventFactory.create_batch(6, trigger=trigger)
    process()
    state = campaign_budget_state(campaign=campaign, mode="live")
    assert state.left == Decimal("10")
    assert state.projected_exhaustion == today + timedelta(days=1)
    assert state.low is True
