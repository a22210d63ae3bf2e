"""Endpoints receive live deliveries, test deliveries, or both; every payload says its mode."""

import json
import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from rewards.services.evaluation import trigger_events_failed_notify
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from rewards.webhooks.sending import webhook_deliveries_send_due
from rewards.webhooks.services import webhook_delivery_redeliver
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
    assert re.search(r'<td class="field-modes[^"]*"[^>]*>Live and test</td>', listed)


def two_deliveries_to_both(trigger, process, url: str) -> WebhookEndpoint:
    """An endpoint hearing both modes, and a live and a test reward's deliveries, due."""
    endpoint = endpoint_for(trigger.partnership, url, modes="both")
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger, mode="live")
    TriggerEventFactory(trigger=trigger, mode="test")
    process()
    return endpoint


def test_each_delivery_stores_the_mode_of_its_subject(trigger, process):
    two_deliveries_to_both(trigger, process, "https://partner.example/hooks")

    assert sorted((d.mode, d.payload["data"]["mode"]) for d in WebhookDelivery.objects.all()) == [
        ("live", "live"),
        ("test", "test"),
    ]


def test_a_pending_test_delivery_is_cancelled_once_its_endpoint_hears_live_only(
    trigger, process, receiver
):
    hook = receiver()
    endpoint = two_deliveries_to_both(trigger, process, hook.url)
    endpoint.modes = WebhookEndpoint.Modes.LIVE
    endpoint.save()

    webhook_deliveries_send_due()

    assert [json.loads(body)["data"]["mode"] for _, body, _ in hook.requests] == ["live"]
    cancelled = WebhookDelivery.objects.get(mode="test")
    assert (cancelled.status, cancelled.attempts, cancelled.history) == ("cancelled", 0, [])
    assert cancelled.last_error == "Cancelled: a test delivery, and the endpoint hears Live only"
    assert WebhookDelivery.objects.get(mode="live").status == "succeeded"


def test_a_pending_delivery_is_cancelled_once_its_endpoint_drops_its_event_type(
    trigger, process, receiver
):
    hook = receiver()
    endpoint = two_deliveries_to_both(trigger, process, hook.url)
    endpoint.event_types = ["reward.reversed"]
    endpoint.save()

    webhook_deliveries_send_due()

    assert hook.requests == []
    assert {(d.status, d.last_error) for d in WebhookDelivery.objects.all()} == {
        ("cancelled", "Cancelled: the endpoint no longer receives reward.issued")
    }


def test_a_redelivery_the_endpoint_no_longer_wants_is_cancelled_not_sent(
    trigger, process, receiver
):
    hook = receiver()
    endpoint = two_deliveries_to_both(trigger, process, hook.url)
    webhook_deliveries_send_due()
    assert len(hook.accepted()) == 2
    endpoint.modes = WebhookEndpoint.Modes.LIVE
    endpoint.save()

    for delivery in WebhookDelivery.objects.all():
        assert webhook_delivery_redeliver(delivery=delivery)
    webhook_deliveries_send_due()

    redelivered = hook.requests[2:]
    assert [json.loads(body)["data"]["mode"] for _, body, _ in redelivered] == ["live"]
    assert WebhookDelivery.objects.get(mode="test").status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_deliveries_made_before_they_stored_a_mode_take_it_from_their_payload():
    before = [("rewards", "0007_webhookendpoint_modes")]
    partnership = PartnershipFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        endpoint = old.get_model("rewards", "WebhookEndpoint").objects.create(
            partnership_id=partnership.id, url="https://old.example/", secret="s", event_types=[]
        )
        for name, data in [
            ("test", {"mode": "test"}),
            ("live", {"mode": "live"}),
            ("before modes", {"reward_id": "r"}),
        ]:
            old.get_model("rewards", "WebhookDelivery").objects.create(
                endpoint_id=endpoint.id,
                event_type=name,
                payload={"data": data},
                next_attempt_at=timezone.now(),
                created_at=timezone.now(),
            )

        executor.loader.build_graph()
        executor.migrate([("rewards", "0008_webhookdelivery_mode")])
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(WebhookDelivery.objects.values_list("event_type", "mode")) == {
        "test": "test",
        "live": "live",
        "before modes": "live",
    }
