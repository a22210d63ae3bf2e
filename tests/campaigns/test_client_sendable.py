"""A client-sendable trigger's campaigns bound each user's money: marking the trigger is
refused while one does not, and a campaign that does not is refused at save."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from campaigns.client_sendable import trigger_client_sendable_refusals
from campaigns.models import Campaign
from campaigns.services import campaign_save
from partnerships.pilot_revision import LOADED
from tests.factories import CampaignFactory, TriggerFactory

pytestmark = pytest.mark.django_db

CAPPED = {"max_rewards_per_user": 1}
SCHEMA = {"type": "object", "properties": {"amount": {"type": "number"}}}


@pytest.fixture
def app_trigger(partnership):
    return TriggerFactory(partnership=partnership, name="app_opened", context_schema=SCHEMA)


def test_marking_is_refused_while_a_campaign_lacks_a_per_user_cap(app_trigger):
    CampaignFactory(trigger=app_trigger, slug="open-bonus")

    refusals = trigger_client_sendable_refusals(trigger=app_trigger)

    assert len(refusals) == 1 and "open-bonus" in refusals[0] and "per-user cap" in refusals[0]


def test_marking_is_refused_for_an_unbounded_percentage(app_trigger, trigger):
    CampaignFactory(
        trigger=trigger,
        reward_type=Campaign.RewardType.PERCENTAGE,
        reward_value=Decimal("5"),
        reward_field="amount",
        **CAPPED,
    )

    refusals = trigger_client_sendable_refusals(trigger=trigger)

    assert len(refusals) == 1 and "maximum reward" in refusals[0]


def test_a_fact_reading_the_trigger_counts(app_trigger, trigger):
    CampaignFactory(
        trigger=trigger,
        slug="loyal-openers",
        condition="facts.opens >= 3",
        facts=[{"name": "opens", "aggregate": "count", "trigger": "app_opened", "window_days": 7}],
    )

    refusals = trigger_client_sendable_refusals(trigger=app_trigger)

    assert len(refusals) == 1 and "loyal-openers" in refusals[0]


def test_capped_bounded_and_ended_campaigns_allow_marking(app_trigger):
    CampaignFactory(trigger=app_trigger, **CAPPED)
    CampaignFactory(
        trigger=app_trigger,
        reward_type=Campaign.RewardType.PERCENTAGE,
        reward_value=Decimal("5"),
        reward_field="amount",
        reward_max=Decimal("3"),
        max_rewards_per_user_per_period=1,
        period=Campaign.Period.DAY,
    )
    CampaignFactory(trigger=app_trigger, status=Campaign.Status.ENDED)

    assert trigger_client_sendable_refusals(trigger=app_trigger) == []


def test_a_campaign_on_a_client_sendable_trigger_must_be_bounded_at_save(app_trigger):
    app_trigger.client_sendable = True
    app_trigger.save()

    with pytest.raises(ValidationError) as raised:
        CampaignFactory(trigger=app_trigger)

    assert (
        "client-sendable trigger app_opened" in raised.value.message_dict["max_rewards_per_user"][0]
    )
    assert not Campaign.objects.exists()


def test_a_campaign_edited_later_is_held_too(app_trigger, trigger):
    campaign = CampaignFactory(trigger=trigger, **CAPPED)
    app_trigger.client_sendable = True
    app_trigger.save()

    campaign.facts = [{"name": "opens", "aggregate": "count", "trigger": "app_opened"}]
    campaign.max_rewards_per_user = None
    with pytest.raises(ValidationError) as raised:
        campaign_save(campaign=campaign)

    assert "max_rewards_per_user" in raised.value.message_dict


def mark_in_pilot(admin_client, app_trigger):
    return admin_client.post(
        f"/pilot/triggers/trigger/{app_trigger.pk}/change/",
        {
            "partnership": app_trigger.partnership_id,
            "name": app_trigger.name,
            "description": "",
            "context_schema": json.dumps(SCHEMA),
            "status": "active",
            "client_sendable": "on",
            LOADED: app_trigger.revision,
        },
    )


def test_marking_in_pilot_shows_the_refusal_at_the_field(admin_client, app_trigger):
    CampaignFactory(trigger=app_trigger, slug="open-bonus")

    response = mark_in_pilot(admin_client, app_trigger)

    assert response.status_code == 200
    assert "open-bonus" in response.content.decode()
    app_trigger.refresh_from_db()
    assert app_trigger.client_sendable is False


def test_marking_in_pilot_saves_when_every_campaign_is_bounded(admin_client, app_trigger):
    CampaignFactory(trigger=app_trigger, **CAPPED)

    response = mark_in_pilot(admin_client, app_trigger)

    assert response.status_code == 302, response.context["adminform"].form.errors
    app_trigger.refresh_from_db()
    assert app_trigger.client_sendable is True


def test_the_campaign_builder_shows_the_refusal_at_the_cap(admin_client, app_trigger):
    from tests.campaigns.test_builder import ADD, campaign_form

    app_trigger.client_sendable = True
    app_trigger.save()

    refused = admin_client.post(ADD, campaign_form(app_trigger, status="draft"))
    capped = admin_client.post(
        ADD, campaign_form(app_trigger, status="draft", max_rewards_per_user="1")
    )

    (error,) = refused.context["adminform"].form.errors["max_rewards_per_user"]
    assert "Set a per-user cap" in error and "client-sendable trigger app_opened" in error
    assert capped.status_code == 302
    assert Campaign.objects.get().max_rewards_per_user == 1
