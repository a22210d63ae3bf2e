"""Campaign counters: there whenever the ledger locks them, however the campaign was made."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from rewards.locks import NEW_COUNTER
from rewards.models import CampaignCounter, Reward
from tests.factories import CampaignFactory, EndUserFactory
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


def queued(trigger, count: int) -> list[TriggerEvent]:
    now = timezone.now()
    return TriggerEvent.objects.bulk_create(
        TriggerEvent(
            partnership=trigger.partnership,
            trigger=trigger,
            end_user=EndUserFactory(partnership=trigger.partnership),
            context={"amount": 25, "currency": "USD"},
            occurred_at=now,
            received_at=now,
            deliver_at=now - timedelta(seconds=count - index),
        )
        for index in range(count)
    )


def test_a_campaign_whose_counters_are_missing_is_evaluated_and_counted(trigger, process):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("3"), budget=Decimal("150"))
    CampaignCounter.objects.filter(campaign=campaign).delete()  # a bulk load, a fixture
    queued(trigger, 100)

    process()

    assert set(TriggerEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Reward.objects.count() == 50
    counter = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert (counter.reward_count, counter.spent) == (50, Decimal("150"))


def test_the_new_counter_columns_are_the_models(db):
    columns = {field.column for field in CampaignCounter._meta.concrete_fields}
    assert set(NEW_COUNTER) == columns - {"id"}
    with connection.cursor() as cursor:
        defaults = {field.column: field.get_default() for field in CampaignCounter._meta.fields}
        for column in ("reward_count", "spent"):
            cursor.execute(f"SELECT {NEW_COUNTER[column]}")
            assert cursor.fetchone()[0] == defaults[column]
