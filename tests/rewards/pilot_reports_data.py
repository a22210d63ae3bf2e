"""A known set of rewards and reversals for the report pages' tests, made the real way: events
evaluated by the workers' pipeline, reversals through the partner API.

Live mode, partnership in Europe/Paris, unit Points (2 places):

    event            cashback (10 if amount >= 20, budget 100)   big (5 if amount >= 50)
    alice 25         rewarded 10, then 4 clawed back             condition false
    alice 30         rewarded 10                                 condition false
    bob 25           rewarded 10, then reversed in full          condition false
    carol 60         rewarded 10                                 rewarded 5
    carol 5          condition false                             condition false

and one test-mode event of alice (cashback 10), which no live figure may include.
"""

from dataclasses import dataclass
from decimal import Decimal

from campaigns.models import Campaign
from partnerships.models import Partnership
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory
from tests.rewards.conftest import process_batch

# What the live reports must show for the scenario (issued today, reversed today).
EXPECTED_TOTALS = {
    "issued_count": "5",
    "issued_amount": "45.00",
    "reversed_count": "2",
    "reversed_amount": "14.00",
    "net_amount": "31.00",
    "events_evaluated": "5",
    "events_rewarded": "4",
    "conversion": "80.0%",
    "unique_users": "3",
}
EXPECTED_CASHBACK = {
    "issued_count": "4",
    "issued_amount": "40.00",
    "reversed_count": "2",
    "reversed_amount": "14.00",
    "net_amount": "26.00",
    "budget": "100.00",
    "spent": "26.00",
    "left": "74.00",
}


@dataclass
class Scenario:
    partnership: Partnership
    cashback: Campaign
    big: Campaign


def build_scenario(*, partnership: Partnership, trigger, partner_client) -> Scenario:
    partnership.time_zone = "Europe/Paris"
    partnership.save(update_fields=["time_zone"])
    cashback = CampaignFactory(
        trigger=trigger,
        name="Cashback",
        slug="cashback",
        condition="context.amount >= 20.0",
        budget=Decimal("100"),
    )
    big = CampaignFactory(
        trigger=trigger,
        name="Big spenders",
        slug="big",
        condition="context.amount >= 50.0",
        reward_value=Decimal("5"),
    )
    users = {
        name: EndUserFactory(partnership=partnership, external_user_id=name)
        for name in ("alice", "bob", "carol")
    }

    def event(user: str, amount: int, mode: str = "live"):
        return TriggerEventFactory(
            trigger=trigger,
            end_user=users[user],
            mode=mode,
            context={"amount": amount, "currency": "USD"},
        )

    alice_first = event("alice", 25)
    event("alice", 30)
    bob = event("bob", 25)
    event("carol", 60)
    event("carol", 5)
    event("alice", 25, mode="test")
    while process_batch():  # the workers' pipeline, as the worker's task runs it
        pass

    for body in (
        {"trigger_event_id": str(bob.id), "reason": "refund #1"},
        {"trigger_event_id": str(alice_first.id), "amount": "4", "reason": "partial refund"},
    ):
        response = partner_client.post(
            f"/partnerships/{partnership.id}/triggers/reverse", body, format="json"
        )
        assert response.status_code == 200, response.content
    return Scenario(partnership, cashback, big)
