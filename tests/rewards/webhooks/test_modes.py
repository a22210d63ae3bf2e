"""Endpoints receive live deliveries, test deliveries, or both; every payload says its mode."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rewards.services.evaluation import trigger_events_failed_notify
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import CampaignFactory, PartnershipFactory, TriggerEventFactory

from .support import endpoint_for

pytestmark = pytest.mark.django_db

ALL_TYPES = ("reward.issued", "reward.reversed", "trigger_event.failed")


def endpoints_by_modes(partnership) -> dict[str, WebhookEndpoint]:
    return {
        modes: endpoint_for(partnership, f"https://{modes}.example/hooks", ALL_TYPES, modes)
        for modes in ("live", "test", "both")
    }


def heard(event_mode: str) -> set[str]:
    """Which endpoints (by their modes) got a delivery about an event of ``event_mode``."""
    return {
        delivery.endpoint.modes
        for delivery in WebhookDelivery.objects.select_related("endpoint")
        if delivery.payload["data"]["mode"] == event_mode
    }


def test_a_test_mode_reward_is_delivered_to_test_and_both_endpoints_only(trigger, process):
    endpoints_by_modes(trigger.partnership)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger, mode="test")

    process()

    assert {d.endpoint.modes for d in WebhookDelivery.objects.select_related("endpoint")} == {
        "test",
        "both",
    }
    assert {d.payload["data"]["mode"] for d in WebhookDelivery.objects.all()} == {"test"}


def test_live_and_test_rewards_of_one_batch_each_reach_their_own_modes(trigger, process):
    endpoints_by_modes(trigger.partnership)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger, mode="live")
    TriggerEventFactory(trigger=trigger, mode="test")

    process()  # one batch: one (cached) lookup of the partnership's endpoints serves both

    assert heard("live") == {"live", "both"}
    assert heard("test") == {"test", "both"}


def test_a_failed_test_event_says_its_mode_and_reaches_test_endpoints_only(trigger):
    endpoints_by_modes(trigger.partnership)
    event = TriggerEventFactory(trigger=trigger, mode="test", status="failed", error="boom")

    trigger_events_failed_notify([event])

    deliveries = WebhookDelivery.objects.select_related("endpoint")
    assert {d.endpoint.modes for d in deliveries} == {"test", "both"}
    assert {d.payload["type"] for d in deliveries} == {"trigger_event.failed"}
    assert deliveries[0].payload["data"] == {
        "trigger_event_id": str(event.id),
        "user_uuid": str(event.end_user_id),
        "error": "boom",
        "mode": "test",
    }


def test_changing_an_endpoints_modes_takes_effect_at_once(trigger, process):
    endpoint = endpoint_for(trigger.partnership, "https://partner.example/hooks", modes="live")
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger, mode="test")
    process()  # the lookup is now cached in this process
    assert not WebhookDelivery.objects.exists()

    endpoint.modes = WebhookEndpoint.Modes.TEST
    endpoint.save()
    TriggerEventFactory(trigger=trigger, mode="test")
    process()

    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_new_endpoints_receive_live_deliveries_only_unless_told_otherwise(partnership):
    endpoint = WebhookEndpoint.objects.create(partnership=partnership, url="https://p.example/")

    assert endpoint.modes == "live"


@pytest.mark.django_db(transaction=True)
def test_endpoints_made_before_modes_existed_keep_receiving_both():
    before = [("rewards", "0005_webhook_previous_secret")]
    partnership = PartnershipFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("rewards", "WebhookEndpoint")
        old.objects.create(
            partnership_id=partnership.id, url="https://old.example/", secret="s", event_types=[]
        )

        executor.loader.build_graph()
        executor.migrate([("rewards", "0007_webhookendpoint_modes")])
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert WebhookEndpoint.objects.get(url="https://old.example/").modes == "both"
    assert (
        WebhookEndpoint.objects.create(partnership=partnership, url="https://new.example/").modes
        == "live"
    )


def test_pilot_offers_live_for_a_new_endpoint_and_saves_the_modes_chosen(admin_client, partnership):
    form = admin_client.get("/pilot/rewards/webhookendpoint/add/").content.decode()
    admin_client.post(
        "/pilot/rewards/webhookendpoint/add/",
        {
            "partnership": partnership.id,
            "url": "https://partner.example/hooks",
            "event_types": "reward.issued",
            "modes": "both",
            "active": "on",
        },
    )
    listed = admin_client.get("/pilot/rewards/webhookendpoint/").content.decode()

    assert '<option value="live" selected>Live only</option>' in form
    assert WebhookEndpoint.objects.get().modes == "both"
    assert '<td class="field-modes">Live and test</td>' in listed
