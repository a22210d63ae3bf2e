"""campaign.budget_exhausted, campaign.budget_low and campaign.ended: written as outbox rows with
what causes them, once per occurrence, to the endpoints that receive the campaign's mode."""

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.lifecycle import campaign_approve, campaign_change, campaign_end
from campaigns.models import Campaign
from campaigns.tasks import end_expired_campaigns
from rewards.models import CampaignCounter
from rewards.services.notices import campaign_budgets_low_warn
from rewards.tasks import warn_low_budgets
from rewards.webhooks.models import WebhookDelivery, WebhookEventType
from rewards.webhooks.sending import webhook_deliveries_send_due
from tests.factories import CampaignFactory, TriggerEventFactory, TriggerFactory
from tests.rewards.webhooks.support import Receiver, endpoint_for

pytestmark = pytest.mark.django_db

EXHAUSTED = WebhookEventType.CAMPAIGN_BUDGET_EXHAUSTED
LOW = WebhookEventType.CAMPAIGN_BUDGET_LOW
ENDED = WebhookEventType.CAMPAIGN_ENDED
CAMPAIGN_TYPES = (EXHAUSTED, LOW, ENDED)


@pytest.fixture
def admin(django_user_model, settings):
    """Edits and approves alone (four eyes off), as a one-person team does."""
    settings.CAMPAIGN_APPROVAL_FOUR_EYES = False
    return django_user_model.objects.create_superuser("ops", is_staff=True)


@pytest.fixture
def hooks(trigger):
    """One endpoint per modes setting, each receiving the campaign notices."""
    return {
        modes: endpoint_for(
            trigger.partnership, f"https://{modes}.example/h", CAMPAIGN_TYPES, modes
        )
        for modes in ("live", "test", "both")
    }


def sent(event_type: str, endpoint=None) -> list[dict]:
    """The payloads' ``data`` of ``event_type`` deliveries (to ``endpoint``), oldest first."""
    deliveries = WebhookDelivery.objects.filter(event_type=event_type).order_by("created_at")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return [delivery.payload["data"] for delivery in deliveries]


def events(trigger, count: int, mode: str = "live") -> None:
    for _ in range(count):
        TriggerEventFactory(trigger=trigger, mode=mode)


def raise_budget(campaign: Campaign, budget: str, admin) -> None:
    """Through approval, as an operator raises it in Pilot."""
    edited = Campaign.objects.get(pk=campaign.pk)
    edited.budget = Decimal(budget)
    proposed = campaign_change(campaign=edited, author=admin).version
    campaign_approve(campaign=edited, approver=admin, shown_id=proposed.pk)


# --- campaign.budget_exhausted ------------------------------------------------------------------


def test_the_first_reward_refused_for_the_budget_announces_it_exhausted_once(
    trigger, hooks, process
):
    campaign = CampaignFactory(
        trigger=trigger, slug="cashback", reward_value=Decimal("3"), budget=Decimal("10")
    )
    events(trigger, 3)
    process()
    assert sent(EXHAUSTED) == []  # 9 of 10 spent: the next reward of 3 does not fit

    events(trigger, 1)
    process()
    events(trigger, 5)
    process()

    [data] = sent(EXHAUSTED, hooks["live"])
    assert data == {
        "campaign_id": str(campaign.id),
        "campaign_slug": "cashback",
        "campaign_name": campaign.name,
        "mode": "live",
        "unit": trigger.partnership.reward_unit,
        "budget": "10.00",
        "spent": "9.00",
        "left": "1.00",
        "rewards": 3,
        "exhausted_at": data["exhausted_at"],
    }
    counter = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert data["exhausted_at"] == counter.exhausted_at.isoformat()
    assert counter.exhausted_budget == Decimal("10")


def test_a_budget_spent_to_the_last_unit_is_exhausted_without_a_refusal(trigger, hooks, process):
    CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal("10"))
    events(trigger, 2)

    process()

    [data] = sent(EXHAUSTED, hooks["live"])
    assert (data["spent"], data["left"], data["rewards"]) == ("10.00", "0.00", 2)


def test_a_raised_budget_that_runs_out_again_is_a_new_occurrence(trigger, hooks, process, admin):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal("10"))
    events(trigger, 3)
    process()

    raise_budget(campaign, "20", admin)
    events(trigger, 3)
    process()
    events(trigger, 2)  # refused again at 20: the same occurrence
    process()

    assert [(d["budget"], d["spent"]) for d in sent(EXHAUSTED, hooks["live"])] == [
        ("10.00", "10.00"),
        ("20.00", "20.00"),
    ]


def test_a_test_mode_budget_is_announced_to_test_endpoints_only(trigger, hooks, process):
    CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal("10"))
    events(trigger, 2, mode="test")  # the test budget is spent
    events(trigger, 1, mode="live")  # the live one (a counter of its own) is not

    process()

    assert sent(EXHAUSTED, hooks["live"]) == []
    assert [d["mode"] for d in sent(EXHAUSTED, hooks["test"])] == ["test"]
    assert [d["mode"] for d in sent(EXHAUSTED, hooks["both"])] == ["test"]


def test_an_endpoint_that_does_not_take_the_type_hears_nothing(trigger, process):
    rewards_only = endpoint_for(trigger.partnership, "https://r.example/h", ("reward.issued",))
    CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal("5"))
    events(trigger, 2)

    process()

    assert set(
        WebhookDelivery.objects.filter(endpoint=rewards_only).values_list("event_type", flat=True)
    ) == {"reward.issued"}


# --- campaign.budget_low ------------------------------------------------------------------------


def burning(trigger, hooks, process, *, budget="100", spent=5, **fields) -> Campaign:
    """A campaign that paid ``spent`` rewards of 10 just now: 10 x spent an hour and more."""
    campaign = CampaignFactory(
        trigger=trigger, reward_value=Decimal("10"), budget=Decimal(budget), **fields
    )
    events(trigger, spent)
    process()
    return campaign


def test_a_budget_that_runs_out_within_the_horizon_is_announced_low_once(trigger, hooks, process):
    campaign = burning(trigger, hooks, process)  # 50 of 100 spent within the last hour
    now = timezone.now()

    assert campaign_budgets_low_warn(now=now) == 2  # live and both
    assert campaign_budgets_low_warn(now=now) == 0
    warn_low_budgets()  # beat's task, a minute later: still nothing new

    [data] = sent(LOW, hooks["live"])
    assert (data["campaign_id"], data["mode"]) == (str(campaign.id), "live")
    assert (data["budget"], data["spent"], data["left"]) == ("100.00", "50.00", "50.00")
    burn = Decimal(data["burn_rate_per_hour"])
    assert Decimal("25") < burn <= Decimal("50")  # 50 over the hour's 15-minute buckets
    runs_out = data["projected_exhaustion_at"]
    hours = (timezone.datetime.fromisoformat(runs_out) - now).total_seconds() / 3600
    assert hours == pytest.approx(float(Decimal(50) / burn), rel=1e-3)
    assert data["warned_at"] == now.isoformat()
    assert sent(LOW, hooks["test"]) == []


def test_a_budget_that_lasts_beyond_the_horizon_is_not_announced(trigger, hooks, process, settings):
    settings.CAMPAIGN_BUDGET_LOW_HOURS = 0.5  # it lasts an hour or more at this rate
    burning(trigger, hooks, process)

    assert campaign_budgets_low_warn() == 0


def test_a_campaign_that_ends_before_its_budget_runs_out_is_not_announced(trigger, hooks, process):
    burning(trigger, hooks, process, ends_at=timezone.now() + timedelta(minutes=30))

    assert campaign_budgets_low_warn() == 0


def test_a_paused_campaign_is_not_announced_low(trigger, hooks, process, admin):
    from campaigns.lifecycle import campaign_pause

    campaign = burning(trigger, hooks, process)
    campaign_pause(campaign=campaign, actor=admin)

    assert campaign_budgets_low_warn() == 0


def test_warning_campaigns_of_other_modes_at_once_adds_no_counter_of_another_mode(
    trigger, hooks, process
):
    """A counter says the campaign ran in its mode (campaign.ended is sent there)."""
    in_live = burning(trigger, hooks, process)
    in_test = CampaignFactory(
        trigger=TriggerFactory(partnership=trigger.partnership, name="order_shipped"),
        reward_value=Decimal("10"),
        budget=Decimal("100"),
    )
    for _ in range(5):
        TriggerEventFactory(trigger=in_test.trigger, mode="test")
    process()

    assert campaign_budgets_low_warn() == 4  # each to its mode's endpoint and to "both"

    assert set(CampaignCounter.objects.values_list("campaign_id", "mode")) == {
        (in_live.id, "live"),
        (in_test.id, "test"),
    }


def test_an_exhausted_budget_is_not_also_announced_low(trigger, hooks, process):
    burning(trigger, hooks, process, budget="50")

    assert campaign_budgets_low_warn() == 0
    assert len(sent(EXHAUSTED, hooks["live"])) == 1


def test_a_raised_budget_still_running_low_is_announced_again(trigger, hooks, process, admin):
    campaign = burning(trigger, hooks, process)
    campaign_budgets_low_warn()

    raise_budget(campaign, "120", admin)
    assert campaign_budgets_low_warn() == 2

    assert [d["budget"] for d in sent(LOW, hooks["live"])] == ["100.00", "120.00"]


# --- campaign.ended -----------------------------------------------------------------------------


def test_an_operator_ending_a_campaign_announces_it_once_per_mode_it_ran_in(
    trigger, hooks, process, admin
):
    campaign = CampaignFactory(trigger=trigger, slug="autumn", budget=Decimal("100"))
    events(trigger, 1, mode="live")
    events(trigger, 2, mode="test")
    process()

    campaign_end(campaign=campaign, actor=admin)

    [live] = sent(ENDED, hooks["live"])
    assert live["mode"] == "live" and live["ended_by"] == "operator"
    assert (live["campaign_slug"], live["spent"], live["rewards"]) == ("autumn", "10.00", 1)
    assert live["ended_at"] == Campaign.objects.get(pk=campaign.pk).updated_at.isoformat()
    assert live["ends_at"] is None
    assert [d["mode"] for d in sent(ENDED, hooks["test"])] == ["test"]
    assert sorted(d["mode"] for d in sent(ENDED, hooks["both"])) == ["live", "test"]


def test_a_campaign_beat_ends_is_announced_once_by_the_schedule(trigger, hooks, process):
    trigger.partnership.max_event_lateness_days = 0
    trigger.partnership.save()
    campaign = CampaignFactory(trigger=trigger)
    ends_at = timezone.now() - timedelta(days=60)
    Campaign.objects.filter(pk=campaign.pk).update(ends_at=ends_at)

    end_expired_campaigns()
    end_expired_campaigns()

    [data] = sent(ENDED, hooks["live"])  # it saw no event: announced in live
    assert (data["ended_by"], data["ends_at"], data["spent"]) == (
        "schedule",
        ends_at.isoformat(),
        "0.00",
    )
    assert data["budget"] is None and data["left"] is None
    assert Campaign.objects.get(pk=campaign.pk).status == "ended"


def test_a_test_campaign_ending_is_heard_by_test_endpoints_only(trigger, hooks, process, admin):
    campaign = CampaignFactory(trigger=trigger)
    events(trigger, 1, mode="test")
    process()

    campaign_end(campaign=campaign, actor=admin)

    assert sent(ENDED, hooks["live"]) == []
    assert [d["mode"] for d in sent(ENDED, hooks["test"])] == ["test"]


def test_an_ending_that_rolls_back_leaves_no_delivery(trigger, hooks, admin):
    from django.db import transaction

    campaign = CampaignFactory(trigger=trigger)

    def end_then_fail() -> None:
        with transaction.atomic():
            campaign_end(campaign=campaign, actor=admin)
            raise RuntimeError("the caller's transaction fails after the end")

    with pytest.raises(RuntimeError):
        end_then_fail()

    assert sent(ENDED) == []
    assert Campaign.objects.get(pk=campaign.pk).status == "active"


@pytest.fixture
def listening():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_a_receiver_gets_the_signed_notice_over_http(trigger, process, listening):
    endpoint = endpoint_for(trigger.partnership, listening.url, CAMPAIGN_TYPES)
    CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal("5"))
    events(trigger, 1)
    process()

    assert webhook_deliveries_send_due() == 1

    [(headers, body, status)] = listening.requests
    signed = f"{headers['Webhook-Timestamp']}.".encode() + body
    expected = hmac.new(endpoint.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["Webhook-Signature"] == f"v1={expected}"
    payload = json.loads(body)
    assert (payload["type"], payload["data"]["left"], status) == (EXHAUSTED, "0.00", 200)


def test_deleting_an_approved_campaign_ends_it_and_announces_it(trigger, hooks, admin):
    """What the management API's DELETE and a configuration apply removing it call."""
    from campaigns.lifecycle import Removal, campaign_remove

    campaign = CampaignFactory(trigger=trigger)

    assert campaign_remove(campaign=campaign, actor=admin, expected_revision=None) == Removal.ENDED

    [data] = sent(ENDED, hooks["live"])
    assert (data["campaign_id"], data["ended_by"]) == (str(campaign.id), "operator")
