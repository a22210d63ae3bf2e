"""One partnership with a row of every kind Pilot shows, for tests of roles and scope."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from campaigns.models import Campaign
from partnerships.models import ApiKey, EndUser, Partnership, PartnershipMember
from partnerships.services import audit_record
from rewards.models import Reversal, Reward, RewardAdjustment
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    EndUserFactory,
    PartnerFactory,
    PartnershipFactory,
    RewardFactory,
    TriggerFactory,
)
from triggers.models import Trigger, TriggerEvent


@dataclass
class World:
    partnership: Partnership
    trigger: Trigger
    campaign: Campaign
    end_user: EndUser
    event: TriggerEvent
    reward: Reward
    key: ApiKey
    endpoint: WebhookEndpoint


def world(name: str, django_user_model) -> World:
    """A partnership with one row of each kind, every name starting with ``name`` (its member,
    a staff user with no role, is ``<name>_ops``)."""
    partnership = PartnershipFactory(name=name, partner=PartnerFactory(name=f"{name} Bank"))
    trigger = TriggerFactory(partnership=partnership, name=f"{name.lower()}_purchase")
    campaign = CampaignFactory(trigger=trigger, name=f"{name} cashback", slug=f"{name.lower()}-cb")
    end_user = EndUserFactory(partnership=partnership, external_user_id=f"{name.lower()}-user")
    reward = RewardFactory(campaign=campaign, end_user=end_user, amount=Decimal("5"))
    reversal = Reversal.objects.create(
        partnership=partnership, trigger_event=reward.trigger_event, mode="live", reason=name
    )
    RewardAdjustment.objects.create(reversal=reversal, reward=reward, amount=Decimal("-5"))
    endpoint = WebhookEndpoint.objects.create(
        partnership=partnership, url=f"https://{name.lower()}.example/hooks", secret="whsec_x"
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type="reward.issued",
        payload={},
        next_attempt_at=timezone.now(),
        created_at=timezone.now(),
    )
    member = django_user_model.objects.create_user(f"{name.lower()}_ops", is_staff=True)
    PartnershipMember.objects.create(user=member, partnership=partnership)
    audit_record(actor=member, action="enduser.block", target=end_user, partnership=partnership)
    return World(
        partnership=partnership,
        trigger=trigger,
        campaign=campaign,
        end_user=end_user,
        event=reward.trigger_event,
        reward=reward,
        key=ApiKeyFactory(partnership=partnership, name=f"{name.lower()}-key"),
        endpoint=endpoint,
    )
