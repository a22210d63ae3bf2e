"""Configuration cannot silently stop a campaign: a trigger change that would break an active
campaign is refused in Pilot, naming it; one that breaks a draft or paused campaign warns."""

import json
from decimal import Decimal

import pytest

from partnerships.pilot_revision import LOADED
from tests.factories import (
    TRANSACTION_SCHEMA,
    CampaignFactory,
    PartnershipFactory,
    TriggerFactory,
)
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

WITHOUT_AMOUNT = {
    "type": "object",
    "properties": {"currency": {"type": "string"}, "merchant_category": {"type": "string"}},
}


def change_trigger(client, trigger, *, follow=False, **fields):
    data = {
        "partnership": trigger.partnership_id,
        "name": trigger.name,
        "description": trigger.description,
        "status": trigger.status,
        "context_schema": json.dumps(trigger.context_schema),
        LOADED: trigger.revision,
        **fields,
    }
    return client.post(f"/pilot/triggers/trigger/{trigger.pk}/change/", data, follow=follow)


def test_removing_a_field_an_active_campaign_reads_is_refused_naming_it(admin_client, trigger):
    CampaignFactory(
        trigger=trigger, name="Big spenders", slug="big", condition="context.amount >= 100.0"
    )

    response = change_trigger(admin_client, trigger, context_schema=json.dumps(WITHOUT_AMOUNT))

    assert response.status_code == 200
    page = response.content.decode()
    assert "would stop the active campaign Big spenders (big)" in page
    assert "undeclared reference to &#x27;context.amount&#x27;" in page
    errors = response.context["adminform"].form.errors["context_schema"]
    assert any("Big spenders" in error for error in errors)
    trigger.refresh_from_db()
    assert trigger.context_schema == TRANSACTION_SCHEMA


def test_changing_a_fields_type_under_a_percentage_reward_is_refused(admin_client, trigger):
    CampaignFactory(
        trigger=trigger,
        slug="cashback",
        reward_type="percentage",
        reward_value=Decimal("5"),
        reward_field="amount",
    )
    schema = {**TRANSACTION_SCHEMA, "properties": {"amount": {"type": "string"}}}

    response = change_trigger(admin_client, trigger, context_schema=json.dumps(schema))

    assert response.status_code == 200
    assert "cashback" in response.content.decode()
    trigger.refresh_from_db()
    assert trigger.context_schema == TRANSACTION_SCHEMA


def test_renaming_a_trigger_another_campaigns_facts_read_is_refused(admin_client, trigger):
    refund = TriggerFactory(
        partnership=trigger.partnership,
        name="refund_issued",
        context_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
    )
    fact = {
        "name": "refunded_30d",
        "aggregate": "sum",
        "trigger": "refund_issued",
        "field": "amount",
        "window_days": 30,
    }
    CampaignFactory(
        trigger=trigger, slug="no-refunders", facts=[fact], condition="facts.refunded_30d == 0.0"
    )

    renamed = change_trigger(admin_client, refund, name="refund_done")
    retyped = change_trigger(
        admin_client,
        refund,
        context_schema=json.dumps({"type": "object", "properties": {"amount": {"type": "string"}}}),
    )

    for response in (renamed, retyped):
        assert response.status_code == 200
        assert "no-refunders" in response.content.decode()
    refund.refresh_from_db()
    assert refund.name == "refund_issued"
    assert refund.context_schema["properties"]["amount"] == {"type": "number"}


def test_a_change_that_breaks_only_a_draft_or_paused_campaign_is_saved_with_a_warning(
    admin_client, trigger
):
    CampaignFactory(
        trigger=trigger, slug="next-month", status="draft", condition="context.amount > 1.0"
    )
    CampaignFactory(
        trigger=trigger, slug="on-hold", status="paused", condition="context.amount > 1.0"
    )
    CampaignFactory(trigger=trigger, slug="over", status="ended", condition="context.amount > 1.0")

    response = change_trigger(
        admin_client, trigger, context_schema=json.dumps(WITHOUT_AMOUNT), follow=True
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "The draft campaign" in page and "(next-month) — condition: line 1" in page
    assert "The paused campaign" in page and "(on-hold)" in page
    assert "(over)" not in page
    trigger.refresh_from_db()
    assert trigger.context_schema == WITHOUT_AMOUNT


def test_moving_a_trigger_under_an_active_campaign_to_another_partnership_is_refused(
    admin_client, trigger
):
    CampaignFactory(trigger=trigger, slug="welcome")
    other = PartnershipFactory()

    response = change_trigger(admin_client, trigger, partnership=other.id)

    assert response.status_code == 200
    assert "welcome" in response.content.decode()
    assert Trigger.objects.get(pk=trigger.pk).partnership_id == trigger.partnership_id


def test_a_change_every_campaign_survives_is_saved(admin_client, trigger):
    CampaignFactory(trigger=trigger, slug="big", condition="context.amount >= 100.0")
    schema = {
        **TRANSACTION_SCHEMA,
        "properties": {**TRANSACTION_SCHEMA["properties"], "channel": {"type": "string"}},
    }

    response = change_trigger(admin_client, trigger, context_schema=json.dumps(schema))

    assert response.status_code == 302
    assert Trigger.objects.get(pk=trigger.pk).context_schema == schema


def test_a_campaign_already_broken_does_not_block_other_changes(admin_client, trigger):
    campaign = CampaignFactory(trigger=trigger, slug="big", condition="context.amount >= 100.0")
    Trigger.objects.filter(pk=trigger.pk).update(context_schema=WITHOUT_AMOUNT)  # outside Pilot
    trigger.refresh_from_db()
    assert campaign.status == "active"

    response = change_trigger(admin_client, trigger, description="card purchases")

    assert response.status_code == 302


@pytest.fixture
def refund_read_by_facts(trigger):
    """A trigger no campaign is on, but an active campaign's facts read."""
    refund = TriggerFactory(
        partnership=trigger.partnership,
        name="refund_issued",
        context_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
    )
    fact = {
        "name": "refunds_30d",
        "aggregate": "count",
        "trigger": "refund_issued",
        "window_days": 30,
    }
    CampaignFactory(
        trigger=trigger, slug="no-refunders", facts=[fact], condition="facts.refunds_30d == 0"
    )
    return refund


def test_deleting_a_trigger_an_active_campaigns_facts_read_is_refused(
    admin_client, refund_read_by_facts
):
    url = f"/pilot/triggers/trigger/{refund_read_by_facts.pk}/delete/"

    response = admin_client.post(url, {"post": "yes"}, follow=True)

    page = response.content.decode()
    assert "The trigger refund_issued was not deleted" in page
    assert "no-refunders" in page
    assert Trigger.objects.filter(pk=refund_read_by_facts.pk).exists()


def test_the_bulk_delete_keeps_a_trigger_an_active_campaign_reads(
    admin_client, refund_read_by_facts
):
    unread = TriggerFactory(partnership=refund_read_by_facts.partnership, name="unused")
    data = {
        "action": "delete_selected",
        "_selected_action": [refund_read_by_facts.pk, unread.pk],
        "post": "yes",
    }

    response = admin_client.post("/pilot/triggers/trigger/", data, follow=True)

    assert "The trigger refund_issued was not deleted" in response.content.decode()
    assert Trigger.objects.filter(pk=refund_read_by_facts.pk).exists()
    assert not Trigger.objects.filter(pk=unread.pk).exists()
