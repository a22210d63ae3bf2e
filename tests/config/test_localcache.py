"""The per-process config cache against real Redis and PostgreSQL transactions."""

import pytest
from django.core.cache import cache
from django.db import transaction

from config.localcache import GENERATION_KEY, ConfigCache
from tests.factories import CampaignFactory, TriggerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_change_is_announced_again_once_its_transaction_commits():
    trigger = TriggerFactory()
    with transaction.atomic():
        campaign = CampaignFactory(trigger=trigger)
        campaign.status = "paused"
        campaign.save()
        # Another process reloading now reads the old row and caches it under this
        # generation; only a new generation after the commit makes it read again.
        during = cache.get(GENERATION_KEY)
    after = cache.get(GENERATION_KEY)

    assert during is not None
    assert after != during


def test_a_rolled_back_change_is_not_announced_after_the_rollback():
    trigger = TriggerFactory()
    before = cache.get(GENERATION_KEY)
    seen = []

    def change_then_fail():
        with transaction.atomic():
            CampaignFactory(trigger=trigger)
            seen.append(cache.get(GENERATION_KEY))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert seen[0] != before
    assert cache.get(GENERATION_KEY) == seen[0]


def test_another_process_drops_its_entries_after_the_commit(settings):
    settings.CONFIG_CACHE_CHECK_SECONDS = 0
    other = ConfigCache()  # stands for another web or worker process
    trigger = TriggerFactory()
    other.get("campaigns", lambda: "loaded before")
    with transaction.atomic():
        CampaignFactory(trigger=trigger)
        assert other.get("campaigns", lambda: "reloaded during") == "reloaded during"
    assert other.get("campaigns", lambda: "reloaded after") == "reloaded after"
