"""Webhooks against a real HTTP receiver on 127.0.0.1."""

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from partnerships.models import AuditEntry
from rewards.webhooks import sending
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from rewards.webhooks.sending import webhook_deliveries_send_due
from rewards.webhooks.services import webhook_delivery_redeliver, webhook_endpoint_rotate_secret
from tests.factories import CampaignFactory, TriggerEventFactory, TriggerFactory
from tests.support import celery_worker, free_port, process_env, process_queued, wait_until
from triggers.models import TriggerEvent

from .support import endpoint_for, one_reward_for

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"

pytestmark = pytest.mark.django_db


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """The verification snippet of docs/webhooks.md, run as a receiver would run it."""
    source = DOCS.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - our own documentation
    return namespace["verify"](secret, headers, body)


def test_issued_reward_is_delivered_signed(trigger, process, receiver):
    hook = receiver()
    endpoint = endpoint_for(trigger.partnership, hook.url)
    CampaignFactory(trigger=trigger, reward_value=Decimal("10"))
    event = TriggerEventFactory(trigger=trigger)
    process()

    sent = webhook_deliveries_send_due()

    assert sent == 1
    ((headers, body, _),) = hook.requests
    assert verify(endpoint.secret, headers, body)
    assert not verify("whsec_wrong", headers, body)
    payload = json.loads(body)
    assert payload["type"] == "reward.issued"
    assert payload["id"] == headers["Webhook-Id"]
    assert payload["data"]["trigger_event_id"] == str(event.id)
    assert payload["data"]["amount"] == "10.00"
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_failing_receiver_gets_exactly_one_accepted_delivery_after_retries(
    trigger, process, receiver, monkeypatch
):
    monkeypatch.setattr(sending, "RETRY_SCHEDULE", [timedelta(0)] * 5)
    hook = receiver(statuses=[500, 503])
    one_reward_for(trigger, process, hook.url)

    for _ in range(5):
        webhook_deliveries_send_due()

    assert [status for _, _, status in hook.requests] == [500, 503, 200]
    assert len({headers["Webhook-Id"] for headers, _, _ in hook.requests}) == 1
    assert len(hook.accepted()) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert [attempt["status_code"] for attempt in delivery.history] == [500, 503, 200]


def test_retries_wait_with_backoff_then_give_up(trigger, process, receiver, monkeypatch):
    hook = receiver(statuses=[500] * 20)
    one_reward_for(trigger, process, hook.url)

    webhook_deliveries_send_due()
    assert webhook_deliveries_send_due() == 0  # not due yet: backing off
    delivery = WebhookDelivery.objects.get()
    assert delivery.next_attempt_at - delivery.created_at >= sending.RETRY_SCHEDULE[0]

    monkeypatch.setattr(sending, "RETRY_SCHEDULE", [timedelta(0)] * 3)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())  # time passes
    for _ in range(5):
        webhook_deliveries_send_due()
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.attempts == 4


def test_the_real_schedule_spans_about_a_day():
    assert timedelta(hours=20) <= sum(sending.RETRY_SCHEDULE, timedelta(0)) <= timedelta(hours=30)


def test_unreachable_receiver_is_recorded_and_retried(trigger, process):
    one_reward_for(trigger, process, f"http://127.0.0.1:{free_port()}/nobody")

    webhook_deliveries_send_due()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_error.startswith("ConnectError")


def test_reversal_is_delivered_and_unsubscribed_types_are_not(
    partner_client, partnership, trigger, process, receiver
):
    hook = receiver()
    endpoint_for(partnership, hook.url, types=["reward.reversed"])
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)
    process()
    partner_client.post(
        f"/partnerships/{partnership.id}/triggers/reverse",
        {"trigger_event_id": str(event.id)},
        format="json",
    )

    webhook_deliveries_send_due()

    assert [json.loads(body)["type"] for _, body, _ in hook.requests] == ["reward.reversed"]
    assert json.loads(hook.requests[0][1])["data"]["status"] == "reversed"


def test_other_partnerships_endpoints_hear_nothing(trigger, process, receiver):
    hook = receiver()
    endpoint_for(CampaignFactory().partnership, hook.url)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    process()

    assert webhook_deliveries_send_due() == 0
    assert hook.requests == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_hung_receiver_does_not_hold_up_evaluation(tmp_path, receiver):
    hook = receiver(hang=True)
    trigger = TriggerFactory()
    endpoint_for(trigger.partnership, hook.url)
    CampaignFactory(trigger=trigger)
    env = process_env(EVENT_DISPATCH_INTERVAL="0.5", WEBHOOK_DISPATCH_INTERVAL="0.5")
    evaluation = celery_worker(env, tmp_path / "eval.log", queues="celery", beat=True)
    sender = celery_worker(
        env, tmp_path / "hooks.log", queues="webhooks", pool="threads", concurrency=4
    )
    with evaluation, sender:
        TriggerEventFactory(trigger=trigger)
        wait_until(lambda: hook.arrived >= 1, 60, "a delivery hanging at the receiver")

        later = TriggerEventFactory.create_batch(30, trigger=trigger)
        wait_until(
            lambda: (
                TriggerEvent.objects.filter(
                    pk__in=[e.pk for e in later], status="processed"
                ).count()
                == 30
            ),
            60,
            "events evaluated while the receiver hangs (see eval.log)",
        )
        assert hook.accepted() == []  # still hanging: evaluation did not wait for it

        hook.release.set()
        wait_until(
            lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 31,
            60,
            "every delivery made once released (see hooks.log)",
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_sender_whose_lease_ran_out_neither_sends_the_rest_nor_overwrites_the_outcome(
    settings, receiver
):
    settings.WEBHOOK_LEASE_SECONDS = 1
    hook = receiver(statuses=[500], hold=1)  # the first request: slow, and then a failure
    trigger = TriggerFactory()
    endpoint_for(trigger.partnership, hook.url)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory.create_batch(2, trigger=trigger)
    process_queued(limit=10)
    assert WebhookDelivery.objects.count() == 2

    def first_sender() -> None:
        try:
            webhook_deliveries_send_due()  # claims both, is held at the first
        finally:
            connection.close()

    first = threading.Thread(target=first_sender)
    first.start()
    wait_until(lambda: hook.arrived == 1, 10, "the first sender's request at the receiver")
    time.sleep(1.2)  # its lease runs out
    assert webhook_deliveries_send_due() == 2  # a second sender claims both and delivers them
    hook.release.set()  # the first sender's request ends (500), long after its lease
    first.join(30)

    (held,) = [headers["Webhook-Id"] for headers, _, status in hook.requests if status == 500]
    (rest,) = WebhookDelivery.objects.exclude(pk=held).values_list("id", flat=True)
    sent = [headers["Webhook-Id"] for headers, _, _ in hook.requests]
    assert sent.count(str(rest)) == 1  # not sent again by the first sender
    for delivery in WebhookDelivery.objects.all():
        assert (delivery.status, delivery.attempts) == ("succeeded", 2)
        assert [attempt["status_code"] for attempt in delivery.history] == [200]


def test_a_disabled_endpoint_hears_nothing_until_enabled_again(trigger, process, receiver):
    hook = receiver()
    endpoint = endpoint_for(trigger.partnership, hook.url)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    process()
    endpoint.active = False
    endpoint.save()

    assert webhook_deliveries_send_due() == 0
    assert hook.requests == []

    endpoint.active = True
    endpoint.save()
    assert webhook_deliveries_send_due() == 1
    assert len(hook.accepted()) == 1


def test_an_attempt_counts_when_it_starts_so_a_crashing_send_still_gives_up(
    trigger, process, monkeypatch
):
    one_reward_for(trigger, process, f"http://127.0.0.1:{free_port()}/nobody")
    monkeypatch.setattr(sending, "RETRY_SCHEDULE", [timedelta(0)] * 2)

    for _ in range(3):  # claimed, then the sender dies before any answer
        assert len(sending.webhook_deliveries_claim(limit=10)) == 1
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())  # the lease runs out

    assert WebhookDelivery.objects.get().attempts == 3
    assert sending.webhook_deliveries_claim(limit=10) == []
    assert WebhookDelivery.objects.get().status == "failed"


def test_a_receiver_that_trickles_its_answer_is_cut_off(trigger, process, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    port = free_port()

    class Trickle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):  # a byte every 0.1 s: each read is quick, the whole is not
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.1)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint_for(trigger.partnership, f"http://127.0.0.1:{port}/slow")
        CampaignFactory(trigger=trigger)
        TriggerEventFactory(trigger=trigger)
        process()
        started = time.monotonic()

        webhook_deliveries_send_due()

        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_error.startswith("ReadTimeout")


def test_redeliver_leaves_a_pending_delivery_alone_and_restarts_a_failed_one(trigger, process):
    one_reward_for(trigger, process, f"http://127.0.0.1:{free_port()}/nobody")
    delivery = WebhookDelivery.objects.get()

    assert webhook_delivery_redeliver(delivery=delivery) is False

    WebhookDelivery.objects.update(status="failed", attempts=10)
    assert webhook_delivery_redeliver(delivery=delivery) is True
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at <= timezone.now()


def test_after_a_rotation_the_old_secret_signs_too_for_a_day(trigger, process, receiver):
    hook = receiver()
    endpoint = endpoint_for(trigger.partnership, hook.url)
    old = endpoint.secret
    new = webhook_endpoint_rotate_secret(endpoint=endpoint)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    process()

    webhook_deliveries_send_due()
    WebhookEndpoint.objects.update(previous_secret_expires_at=timezone.now())  # a day later
    TriggerEventFactory(trigger=trigger)
    process()
    webhook_deliveries_send_due()

    (during, _, _), (after, body, _) = hook.requests
    assert len(during["Webhook-Signature"].split()) == 2
    assert verify(old, during, hook.requests[0][1]) and verify(new, during, hook.requests[0][1])
    assert len(after["Webhook-Signature"].split()) == 1
    assert verify(new, after, body) and not verify(old, after, body)


def test_of_two_rotations_from_stale_copies_the_first_new_secret_still_verifies(
    trigger, process, receiver, admin_user
):
    """Two operators rotate at once, each from the row as its page loaded it: the first's new
    secret must stay the previous one (it was shown, the partner may have installed it), not
    the original both copies held."""
    hook = receiver()
    endpoint = endpoint_for(trigger.partnership, hook.url)
    first_copy, second_copy = (WebhookEndpoint.objects.get(pk=endpoint.pk) for _ in range(2))
    first = webhook_endpoint_rotate_secret(endpoint=first_copy, actor=admin_user)
    second = webhook_endpoint_rotate_secret(endpoint=second_copy, actor=admin_user)

    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (second, first)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    process()
    webhook_deliveries_send_due()
    ((headers, body, _),) = hook.requests
    assert verify(first, headers, body) and verify(second, headers, body)
    assert AuditEntry.objects.filter(action="webhook.secret_rotate").count() == 2


def test_the_snippet_refuses_malformed_headers():
    body = b"{}"
    assert not verify("whsec_x", {"Webhook-Timestamp": "soon", "Webhook-Signature": "v1=a"}, body)
    assert not verify("whsec_x", {"Webhook-Signature": "v1=a"}, body)
    assert not verify("whsec_x", {"Webhook-Timestamp": "1", "Webhook-Signature": "v1=é"}, body)


def test_a_redirect_is_not_followed_but_recorded_as_a_failure(trigger, process, receiver):
    elsewhere = receiver()
    hook = receiver(statuses=[307], answer_headers={"Location": elsewhere.url})
    one_reward_for(trigger, process, hook.url)

    webhook_deliveries_send_due()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("pending", 307)
    assert elsewhere.requests == []
