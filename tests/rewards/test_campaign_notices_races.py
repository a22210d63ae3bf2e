"""Each campaign notice is written once even when workers, beats and operators race for it, with
real threads and processes against PostgreSQL."""

import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from campaigns.lifecycle import LifecycleRefused, campaign_end
from campaigns.models import Campaign
from campaigns.services import campaigns_end_expired
from rewards.models import CampaignCounter, Reward
from rewards.services.notices import campaign_budgets_low_warn
from rewards.webhooks.models import WebhookDelivery, WebhookEventType
from tests.factories import CampaignFactory, TriggerFactory
from tests.rewards.test_concurrency import bulk_events, drain, in_threads
from tests.rewards.webhooks.support import endpoint_for
from tests.support import ROOT, process_env, wait_until
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TYPES = [t.value for t in WebhookEventType if t.startswith("campaign.")]


def announced(event_type: str) -> list[dict]:
    return [
        delivery.payload["data"]
        for delivery in WebhookDelivery.objects.filter(event_type=event_type)
    ]


def budgeted_campaign(budget: str):
    trigger = TriggerFactory()
    endpoint_for(trigger.partnership, "https://hooks.example/h", TYPES)
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal(budget))
    return trigger, campaign


def test_eight_threads_exhausting_one_budget_write_one_budget_exhausted():
    trigger, campaign = budgeted_campaign("500")  # 100 rewards, then 900 refusals
    bulk_events(trigger, 1000)

    errors = in_threads(8, drain(limit=5))

    assert errors == []
    assert Reward.objects.count() == 100
    [data] = announced(WebhookEventType.CAMPAIGN_BUDGET_EXHAUSTED)
    assert (data["campaign_id"], data["spent"], data["left"]) == (
        str(campaign.id),
        "500.00",
        "0.00",
    )


DRAIN = """
import os, sys, time
import django
django.setup()
from pathlib import Path
from django.db import connection
from tests.support import process_queued
start = Path(sys.argv[1])
(start.parent / f"ready-{os.getpid()}").touch()
while not start.exists():
    time.sleep(0.01)
process_queued(limit=int(sys.argv[2]))
connection.close()
"""


def test_four_processes_exhausting_one_budget_write_one_budget_exhausted(tmp_path):
    trigger, campaign = budgeted_campaign("500")  # 100 rewards of 5, then 400 refusals
    bulk_events(trigger, 500)
    start = tmp_path / "start"
    env = process_env()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", DRAIN, str(start), "10"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    wait_until(lambda: len(list(tmp_path.glob("ready-*"))) == 4, 60, "the processes set up")
    start.touch()  # released together
    outputs = [worker.communicate(timeout=240)[0].decode() for worker in workers]

    assert [worker.returncode for worker in workers] == [0] * 4, outputs
    assert TriggerEvent.objects.exclude(status="processed").count() == 0
    assert Reward.objects.count() == 100
    [data] = announced(WebhookEventType.CAMPAIGN_BUDGET_EXHAUSTED)
    assert (data["campaign_id"], data["spent"]) == (str(campaign.id), "500.00")
    counter = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert counter.exhausted_budget == Decimal("500")


def test_beats_racing_to_warn_of_a_low_budget_write_one_budget_low():
    trigger, campaign = budgeted_campaign("100")
    bulk_events(trigger, 10)  # 50 of 100 paid just now: runs out within the hour
    drain(limit=50)()
    now = timezone.now()

    errors = in_threads(6, lambda: campaign_budgets_low_warn(now=now))

    assert errors == []
    [data] = announced(WebhookEventType.CAMPAIGN_BUDGET_LOW)
    assert (data["campaign_id"], data["left"]) == (str(campaign.id), "50.00")


def test_an_operator_and_beat_ending_one_campaign_at_once_write_one_campaign_ended():
    trigger, campaign = budgeted_campaign("100")
    trigger.partnership.max_event_lateness_days = 0
    trigger.partnership.save()
    Campaign.objects.filter(pk=campaign.pk).update(ends_at=timezone.now() - timedelta(days=60))
    operator = get_user_model().objects.create_superuser("ops-race", is_staff=True)
    refused = []

    def end_by_hand() -> None:
        try:
            campaign_end(campaign=Campaign.objects.get(pk=campaign.pk), actor=operator)
        except LifecycleRefused:
            refused.append("ended already")

    roles = iter([end_by_hand, campaigns_end_expired] * 3)
    lock = threading.Lock()

    def work() -> None:
        with lock:
            role = next(roles)
        role()

    errors = in_threads(6, work)

    assert errors == []
    assert len(refused) >= 2  # of the three operators, at most one ended it
    [data] = announced(WebhookEventType.CAMPAIGN_ENDED)
    assert data["campaign_id"] == str(campaign.id)
    assert Campaign.objects.get(pk=campaign.pk).status == "ended"
