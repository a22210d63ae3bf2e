"""A failed event retried (Pilot's "Retry") is counted once, by its new outcome: its failure is
taken back from the bucket it was counted in, and the closed days that summed it are summed
again, so the reports equal the rows and a rebuild."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from rewards.reports.days import reports_close_days
from rewards.reports.maintain import reports_count_received
from rewards.reports.models import ActivityBucket, ClosedDay
from rewards.reports.rebuild import reports_rebuild
from rewards.reports.selectors import report_days, report_scope
from rewards.services.evaluation import trigger_events_evaluate
from tests.factories import CampaignFactory, TriggerEventFactory, TriggerFactory
from tests.rewards.conftest import process_batch
from tests.rewards.reports.test_exactness import ZONE, assert_reports_match
from triggers.services.processing import trigger_event_retry

pytestmark = pytest.mark.django_db


def breaks(events):
    raise RuntimeError("this event breaks the evaluation")


def closed(partnership, day) -> bool:
    return ClosedDay.objects.filter(partnership=partnership, mode="live", day=day).exists()


def figures(partnership, first_day, last_day) -> list[tuple]:
    scope = report_scope(
        partnership=partnership, mode="live", first_day=first_day, last_day=last_day
    )
    return [
        (row.day, row.activity.events_evaluated, row.activity.events_failed, row.money)
        for row in report_days(scope=scope)
    ]


def test_a_retried_failure_is_taken_back_from_its_closed_day(settings, django_user_model):
    settings.EVENT_RETRY_DELAY_SECONDS = 0
    settings.EVENT_MAX_ATTEMPTS = 1
    trigger = TriggerFactory(partnership__time_zone=ZONE)
    partnership = trigger.partnership
    CampaignFactory(trigger=trigger, reward_value=Decimal("5"))
    operator = django_user_model.objects.create_user("support")
    three_days_ago = timezone.now() - timedelta(days=3)
    with time_machine.travel(three_days_ago, tick=True):
        event = TriggerEventFactory(trigger=trigger)
        process_batch(processor=breaks)
    event.refresh_from_db()
    assert event.status == "failed"
    reports_count_received(
        now=timezone.now() + timedelta(seconds=settings.REPORTS_RECEIVED_SETTLE_SECONDS + 1)
    )
    reports_close_days(days=5)
    failed_on = event.processed_at.astimezone(partnership.zone).date()
    today = timezone.now().astimezone(partnership.zone).date()
    assert closed(partnership, failed_on)
    assert [row[:3] for row in figures(partnership, failed_on, failed_on)] == [(failed_on, 0, 1)]

    trigger_event_retry(event=event, operator=operator)
    assert not closed(partnership, failed_on)
    process_batch(processor=trigger_events_evaluate)

    event.refresh_from_db()
    assert event.status == "processed"
    kept = figures(partnership, failed_on, today)
    assert [row[:3] for row in kept if row[0] in (failed_on, today)] == [
        (failed_on, 0, 0),
        (today, 1, 0),
    ]
    assert_reports_match(partnership, "live")
    assert not ActivityBucket.objects.filter(metric="event.failed").exists()
    reports_rebuild(partnership_ids=[partnership.pk])
    assert figures(partnership, failed_on, today) == kept
