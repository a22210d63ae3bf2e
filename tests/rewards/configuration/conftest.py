from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission

from campaigns.models import Campaign
from partnerships.models import PartnershipMember
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create
from tests.factories import CampaignFactory, TriggerFactory

CASHBACK_FACTS = [{"name": "purchases_30d", "aggregate": "count", "window_days": 30}]


@pytest.fixture
def configured(partnership):
    """A partnership with two triggers, an active and a draft campaign, and a live and a test
    webhook endpoint at one URL."""
    purchase = TriggerFactory(partnership=partnership, description="A card purchase")
    signup = TriggerFactory(
        partnership=partnership, name="signup", context_schema={"type": "object"}
    )
    CampaignFactory(
        trigger=purchase,
        slug="cashback",
        name="5% cashback",
        condition="context.amount >= 20.0 && facts.purchases_30d >= 1",
        facts=CASHBACK_FACTS,
        reward_type=Campaign.RewardType.PERCENTAGE,
        reward_value=Decimal("5"),
        reward_field="amount",
        reward_max=Decimal("10.50"),
        budget=Decimal("1000"),
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        priority=5,
    )
    CampaignFactory(
        trigger=signup,
        slug="welcome",
        name="Welcome points",
        status=Campaign.Status.DRAFT,
        reward_value=Decimal("100"),
        max_rewards_per_user=1,
    )
    for modes in (WebhookEndpoint.Modes.LIVE, WebhookEndpoint.Modes.TEST):
        webhook_endpoint_create(
            endpoint=WebhookEndpoint(
                partnership=partnership,
                url="https://hooks.example.com/rewards",
                event_types=["reward.issued", "reward.reversed"],
                modes=modes,
            )
        )
    return partnership


@pytest.fixture
def operator(django_user_model, partnership):
    """An Admin of the partnership: may change everything and approve."""
    return django_user_model.objects.create_superuser("ops", "ops@example.com", "x")


def member(django_user_model, partnership, username: str, codenames: tuple):
    """A staff member of ``partnership`` with exactly these permissions ("app.codename")."""
    user = django_user_model.objects.create_user(username, is_staff=True)
    group, _ = Group.objects.get_or_create(name=f"config-{username}")
    for name in codenames:
        app_label, codename = name.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    user.groups.add(group)
    PartnershipMember.objects.create(user=user, partnership=partnership)
    return user


MANAGER = (
    "triggers.add_trigger",
    "triggers.change_trigger",
    "campaigns.add_campaign",
    "campaigns.change_campaign",
)


@pytest.fixture
def manager(django_user_model, partnership):
    """A Campaign Manager: changes triggers and campaigns, cannot approve."""
    return member(django_user_model, partnership, "manager", MANAGER)


@pytest.fixture
def approver(django_user_model, partnership):
    return member(
        django_user_model, partnership, "approver", (*MANAGER, "campaigns.approve_campaign")
    )
