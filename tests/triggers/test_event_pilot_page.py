"""An event's page in Pilot answers "why didn't my user get a reward?": each campaign's
decision in words with the facts it saw and the limits it met, the rewards, their reversals
and the webhooks sent about it."""

from decimal import Decimal

import pytest

from rewards.services.reversal import reward_reverse
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory
from tests.pilot_support import page_text, pilot_operator
from tests.support import process_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(django_user_model, partnership):
    return pilot_operator(django_user_model, "support", partnerships=[partnership])


def test_the_page_shows_each_decision_with_facts_and_limits_rewards_reversals_and_webhooks(
    support, trigger, django_user_model
):
    webhook_endpoint_create(
        endpoint=WebhookEndpoint(
            partnership=trigger.partnership,
            url="https://partner.example/hooks",
            event_types=["reward.issued", "reward.reversed"],
        )
    )
    CampaignFactory(
        trigger=trigger,
        slug="third-purchase",
        priority=3,
        facts=[{"name": "purchases_30d", "aggregate": "count", "window_days": 30}],
        condition="facts.purchases_30d >= 3",
    )
    CampaignFactory(trigger=trigger, slug="small-pot", priority=2, budget=Decimal("5"))
    CampaignFactory(trigger=trigger, slug="welcome", priority=1, reward_value=Decimal("4"))
    user = EndUserFactory(partnership=trigger.partnership, external_user_id="alice")
    event = TriggerEventFactory(trigger=trigger, end_user=user)
    process_queued()
    reward = event.rewards.get()
    operator = django_user_model.objects.create_user("maria", is_staff=True)
    reward_reverse(reward=reward, operator=operator, reason="refunded order", amount=Decimal("1"))

    text = page_text(support.get(f"/pilot/triggers/triggerevent/{event.pk}/change/"))

    # Decisions, in words, with the facts the rule read and the limit that bit.
    assert "<td>third-purchase</td><td>condition_false</td>" in text
    assert "purchases_30d = 1" in text
    assert "<td>small-pot</td><td>budget_exhausted</td>" in text
    assert "a reward of 10.00 would exceed the campaign&#x27;s budget" in text
    assert "budget 5" in text
    assert "<td>welcome</td><td>rewarded</td><td>4.00</td>" in text
    # Its reward, the reversal by the operator, the webhooks.
    assert f"/pilot/rewards/reward/{reward.pk}/change/" in text
    assert "-1.00 Points" in text and "refunded order" in text and "maria" in text
    assert text.count("reward.issued") >= 1 and "reward.reversed" in text
    assert "https://partner.example/hooks" in text


def test_an_event_evaluated_before_facts_and_limits_were_kept_still_reads(support, trigger):
    campaign = CampaignFactory(trigger=trigger, slug="pot")
    stored = [[str(campaign.id), "budget_exhausted", None, {"amount": "10.00"}]]
    event = TriggerEventFactory(trigger=trigger, status="processed", decisions=stored)

    text = page_text(support.get(f"/pilot/triggers/triggerevent/{event.pk}/change/"))

    assert "<td>pot</td><td>budget_exhausted</td>" in text
    assert "a reward of 10.00 would exceed the campaign&#x27;s budget" in text
    assert "No reward." in text and "None sent." in text
