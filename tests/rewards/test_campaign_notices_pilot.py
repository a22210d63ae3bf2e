"""The campaign's page in Pilot says what partners were told: its budget exhausted, running
low (and when it runs out at the current burn rate) or the campaign ended."""

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from campaigns.lifecycle import campaign_end
from rewards.models import CampaignCounter
from tests.factories import CampaignFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


def page(client, campaign) -> str:
    response = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    return response.content.decode()


def paid(trigger, process, count: int, **fields):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("10"), **fields)
    for _ in range(count):
        TriggerEventFactory(trigger=trigger)
    process()
    return campaign


def test_an_exhausted_budget_is_shown_with_when_partners_were_told(pilot_viewer, trigger, process):
    unit = trigger.partnership.reward_unit
    campaign = paid(trigger, process, 3, budget=Decimal("25"))  # the third reward is refused
    told = CampaignCounter.objects.get(campaign=campaign, mode="live").exhausted_at
    zone = trigger.partnership.time_zone

    html = page(pilot_viewer, campaign)

    assert (
        f"Budget exhausted (live): 20.00 {unit} of 25.00 {unit} spent, 5.00 {unit} left; it "
        "pays no reward larger than what is left until the budget is raised. Partners were "
        f"told on {told.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})."
    ) in html


def test_a_budget_running_low_is_shown_with_its_projected_run_out(pilot_viewer, trigger, process):
    unit = trigger.partnership.reward_unit
    campaign = paid(trigger, process, 5, budget=Decimal("100"))  # 50 in the last hour

    html = page(pilot_viewer, campaign)

    shown = re.search(
        rf"Budget running low \(live\): 50\.00 {unit} left of 100\.00 {unit}; at the current "
        rf"burn rate \(([\d.]+) {unit} an hour\) it runs out around "
        r"(\d{4}-\d\d-\d\d \d\d:\d\d) \(([\w/]+)\)\.",
        html,
    )
    assert shown, html
    burn, runs_out, zone = shown.groups()
    assert Decimal("25") < Decimal(burn) <= Decimal("50")
    assert zone == trigger.partnership.time_zone
    hours_left = Decimal(50) / Decimal(burn)
    runs_out_at = datetime.strptime(runs_out, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
    assert 1 <= hours_left <= 2  # so its run-out lies one to two hours ahead
    assert runs_out_at > datetime.now(ZoneInfo(zone))


def test_an_ended_campaign_says_so(pilot_viewer, trigger):
    campaign = CampaignFactory(trigger=trigger)
    operator = get_user_model().objects.create_superuser("ops", is_staff=True)
    campaign_end(campaign=campaign, actor=operator)

    assert "This campaign has ended: it rewards no more events." in page(pilot_viewer, campaign)


def test_a_campaign_with_budget_to_spare_shows_no_notice(pilot_viewer, trigger, process):
    campaign = paid(trigger, process, 1, budget=Decimal("1000000"))

    html = page(pilot_viewer, campaign)

    assert "Budget exhausted" not in html and "Budget running low" not in html
    assert "has ended" not in html
