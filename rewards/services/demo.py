"""The demo catalog of ``make run``: two triggers and two campaigns, created once."""

from decimal import Decimal

from campaigns.models import Campaign
from campaigns.services import campaign_save
from partnerships.models import Partnership
from triggers.models import Trigger

TRANSACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "merchant_category": {"type": "string"},
    },
    "required": ["amount", "currency"],
}
SIGNUP_SCHEMA = {"type": "object", "properties": {"channel": {"type": "string"}}}


def demo_catalog_ensure(*, partnership: Partnership) -> None:
    purchases, _ = Trigger.objects.get_or_create(
        partnership=partnership,
        name="transaction_completed",
        defaults={"context_schema": TRANSACTION_SCHEMA, "description": "A card purchase"},
    )
    signups, _ = Trigger.objects.get_or_create(
        partnership=partnership,
        name="user_signup",
        defaults={"context_schema": SIGNUP_SCHEMA, "description": "A new user signed up"},
    )
    _ensure_campaign(
        partnership,
        slug="cashback-5",
        trigger=purchases,
        name="5% cashback up to 10 on purchases of 20 or more",
        condition="context.amount >= 20.0",
        reward_type=Campaign.RewardType.PERCENTAGE,
        reward_value=Decimal("5"),
        reward_field="amount",
        reward_max=Decimal("10"),
    )
    _ensure_campaign(
        partnership,
        slug="welcome-100",
        trigger=signups,
        name="100 points once per user",
        reward_type=Campaign.RewardType.FIXED,
        reward_value=Decimal("100"),
        max_rewards_per_user=1,
    )


def _ensure_campaign(partnership: Partnership, *, slug: str, **fields) -> None:
    if not Campaign.objects.filter(partnership=partnership, slug=slug).exists():
        campaign_save(
            campaign=Campaign(
                partnership=partnership, slug=slug, status=Campaign.Status.ACTIVE, **fields
            )
        )
