from decimal import Decimal

import factory
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_save
from partnerships.models import ApiKey, EndUser, Partner, Partnership
from partnerships.services import api_key_issue
from rewards.models import Reward
from triggers.models import Trigger, TriggerEvent


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Partner {n}")


class PartnershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partnership

    partner = factory.SubFactory(PartnerFactory)
    name = factory.Sequence(lambda n: f"Partnership {n}")
    reward_unit = "Points"


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Creates a key through the real service; the plaintext is on ``.plaintext``."""

    class Meta:
        model = ApiKey

    partnership = factory.SubFactory(PartnershipFactory)
    mode = ApiKey.Mode.LIVE
    name = "test key"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        issued = api_key_issue(api_key=model_class(*args, **kwargs))
        issued.api_key.plaintext = issued.plaintext
        return issued.api_key


class EndUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndUser

    partnership = factory.SubFactory(PartnershipFactory)
    external_user_id = factory.Sequence(lambda n: f"user-{n}")
    attributes = factory.LazyFunction(dict)


TRANSACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "merchant_category": {"type": "string"},
    },
    "required": ["amount", "currency"],
}


class TriggerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trigger

    partnership = factory.SubFactory(PartnershipFactory)
    name = "transaction_completed"
    context_schema = factory.LazyFunction(lambda: dict(TRANSACTION_SCHEMA))


class TriggerEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TriggerEvent

    trigger = factory.SubFactory(TriggerFactory)
    partnership = factory.SelfAttribute("trigger.partnership")
    end_user = factory.SubFactory(
        EndUserFactory, partnership=factory.SelfAttribute("..partnership")
    )
    context = factory.LazyFunction(lambda: {"amount": 25, "currency": "USD"})
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    deliver_at = factory.LazyFunction(timezone.now)


class CampaignFactory(factory.django.DjangoModelFactory):
    """An active fixed-amount campaign on a transaction trigger, with no condition or limits."""

    class Meta:
        model = Campaign

    trigger = factory.SubFactory(TriggerFactory)
    partnership = factory.SelfAttribute("trigger.partnership")
    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    status = Campaign.Status.ACTIVE
    reward_type = Campaign.RewardType.FIXED
    reward_value = Decimal("10")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Through the real service: what cannot be saved in Pilot cannot be made here."""
        return campaign_save(campaign=model_class(*args, **kwargs))


class RewardFactory(factory.django.DjangoModelFactory):
    """A reward row as the worker writes it, at a chosen ``issued_at`` (no counters, no
    aggregates: for tests of what reads rows)."""

    class Meta:
        model = Reward

    campaign = factory.SubFactory(CampaignFactory)
    partnership = factory.SelfAttribute("campaign.partnership")
    end_user = factory.SubFactory(
        EndUserFactory, partnership=factory.SelfAttribute("..partnership")
    )
    mode = "live"
    trigger_event = factory.SubFactory(
        TriggerEventFactory,
        trigger=factory.SelfAttribute("..campaign.trigger"),
        end_user=factory.SelfAttribute("..end_user"),
        mode=factory.SelfAttribute("..mode"),
    )
    amount = Decimal("10")
    unit = "Points"
    issued_at = factory.LazyFunction(timezone.now)
    occurred_at = factory.SelfAttribute("issued_at")
    campaign_version = 1
