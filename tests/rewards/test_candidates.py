"""Which campaigns judge an event: none is skipped silently, and an ended one stays ended."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.decisions import Outcome
from config.localcache import config_cache
from rewards.models import Reward
from tests.factories import CampaignFactory, TriggerEventFactory
from tests.rewards.conftest import decisions, messages
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def test_a_campaign_that_no_longer_compiles_gets_its_own_decision_on_every_event(trigger, process):
    CampaignFactory(trigger=trigger, slug="big", priority=2, condition="context.amount >= 100.0")
    CampaignFactory(trigger=trigger, slug="welcome", priority=1)
    # Changed around Pilot's check (a shell, a data migration): the campaign cannot compile.
    Trigger.objects.filter(pk=trigger.pk).update(context_schema={"type": "object"})
    config_cache.invalidate()
    events = TriggerEventFactory.create_batch(2, trigger=trigger)

    process()

    for event in events:
        assert decisions(event) == {"big": Outcome.CAMPAIGN_INVALID, "welcome": Outcome.REWARDED}
        assert "undeclared reference to 'context.amount'" in messages(event)["big"]
    assert Reward.objects.count() == 2


def test_a_late_event_for_the_campaigns_last_day_still_counts(trigger, process):
    trigger.partnership.max_event_lateness_days = 7
    trigger.partnership.save()
    now = timezone.now()
    CampaignFactory(trigger=trigger, slug="november", ends_at=now - timedelta(days=5))
    last_day = TriggerEventFactory(trigger=trigger, occurred_at=now - timedelta(days=5, hours=1))
    after_end = TriggerEventFactory(trigger=trigger, occurred_at=now - timedelta(days=4))

    process()

    assert decisions(last_day) == {"november": Outcome.REWARDED}
    assert decisions(after_end) == {"november": Outcome.OUTSIDE_SCHEDULE}


def test_an_event_reaching_us_after_the_end_plus_the_lateness_is_not_judged(trigger, process):
    trigger.partnership.max_event_lateness_days = 7
    trigger.partnership.save()
    now = timezone.now()
    CampaignFactory(trigger=trigger, slug="november", ends_at=now - timedelta(days=8))
    backdated = TriggerEventFactory(trigger=trigger, occurred_at=now - timedelta(days=9))

    process()

    assert decisions(backdated) == {}
    assert not Reward.objects.exists()


def test_without_a_lateness_bound_the_grace_is_the_setting(trigger, process, settings):
    settings.CAMPAIGN_END_GRACE_DAYS = 3
    trigger.partnership.max_event_lateness_days = None
    trigger.partnership.save()
    now = timezone.now()
    CampaignFactory(trigger=trigger, slug="within", ends_at=now - timedelta(days=2))
    CampaignFactory(trigger=trigger, slug="beyond", ends_at=now - timedelta(days=4))
    event = TriggerEventFactory(trigger=trigger, occurred_at=now - timedelta(days=5))

    process()

    assert decisions(event) == {"within": Outcome.REWARDED}


def test_an_event_that_reached_us_in_time_is_judged_when_its_delayed_delivery_comes(
    trigger, process
):
    trigger.partnership.max_event_lateness_days = 7
    trigger.partnership.save()
    now = timezone.now()
    CampaignFactory(trigger=trigger, slug="november", ends_at=now - timedelta(days=20))
    delayed = TriggerEventFactory(
        trigger=trigger,
        occurred_at=now - timedelta(days=21),
        received_at=now - timedelta(days=20),  # scheduled then for delivery now
    )

    process()

    assert decisions(delayed) == {"november": Outcome.REWARDED}
