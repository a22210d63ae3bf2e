"""The reports benchmark's seed (bench/reports_seed.py) at a tiny shape: its raw SQL inserts
fit today's tables, and the aggregates built from them give the figures the rows give."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from bench.reports_seed import TIME_ZONE, Shape, seed
from partnerships.models import Partnership
from rewards.models import Reward, RewardAdjustment
from rewards.reports.selectors import liability_at, report_scope, report_totals
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

SHAPE = Shape(rewards=1000, days=3, campaigns=3, users=40)


@pytest.fixture
def seeded():
    return seed(SHAPE)


def test_seed_makes_the_shape_it_names(seeded):
    rewards = Reward.objects.filter(partnership_id=seeded.partnership_id)

    assert rewards.count() == 1000
    assert TriggerEvent.objects.filter(status="processed").count() == 1100
    assert dict(rewards.values_list("mode").annotate(n=Count("id"))) == {"live": 900, "test": 100}
    assert rewards.values("end_user").distinct().count() == 40
    assert rewards.values("campaign").distinct().count() == 3
    # Runs of ten in every 500 rewards are reversed, every other one by half.
    adjustments = RewardAdjustment.objects.filter(reward__partnership_id=seeded.partnership_id)
    assert adjustments.count() == 20
    assert rewards.filter(status="reversed").count() == 10
    assert Partnership.objects.get(pk=seeded.partnership_id).time_zone == TIME_ZONE
    assert (seeded.last_day - seeded.first_day).days == SHAPE.days - 1


def test_seeded_aggregates_give_the_figures_of_the_rows(seeded):
    partnership = Partnership.objects.get(pk=seeded.partnership_id)
    for mode in ("live", "test"):
        scope = report_scope(
            partnership=partnership,
            mode=mode,
            first_day=seeded.first_day,
            last_day=seeded.last_day,
        )
        rewards = Reward.objects.filter(partnership=partnership, mode=mode)
        issued = rewards.aggregate(
            n=Count("id"), amount=Sum("amount"), users=Count("end_user", distinct=True)
        )
        clawed = RewardAdjustment.objects.filter(reward__in=rewards).aggregate(
            n=Count("id"), amount=Sum("amount")
        )

        totals = report_totals(scope=scope)
        (money,) = totals.money

        assert (money.issued_count, money.issued_amount) == (issued["n"], issued["amount"])
        assert (money.reversed_count, money.reversed_amount) == (clawed["n"], clawed["amount"])
        assert totals.unique_users == issued["users"]
        assert totals.activity.events_evaluated == issued["n"] + issued["n"] // 10
        assert totals.activity.events_received == totals.activity.events_evaluated
        end = scope.end + timedelta(days=2)  # after the last reversal
        assert liability_at(partnership=partnership, mode=mode, at=end) == {
            partnership.reward_unit: issued["amount"] - clawed["amount"]
        }
        assert money.issued_amount > Decimal(0)


def test_seed_is_reused_when_the_database_holds_the_same_shape(seeded):
    again = seed(SHAPE)

    assert again.partnership_id == seeded.partnership_id
    assert again.seconds == 0.0
    assert Reward.objects.count() == 1000
    assert again.api_key != seeded.api_key  # a fresh key each run: plaintexts are shown once


@pytest.mark.django_db(transaction=True)  # seeding again truncates: committed rows only
def test_seed_is_made_again_when_its_rows_were_emptied(seeded):
    Reward.objects.filter(status="issued", reversed_amount=0)[:1].get().delete()

    again = seed(SHAPE)

    assert again.partnership_id != seeded.partnership_id
    assert Reward.objects.count() == 1000
