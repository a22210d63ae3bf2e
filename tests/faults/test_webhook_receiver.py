"""A partner's webhook receiver (a local HTTP server) down while rewards are issued: the
deliveries are retried, and completed once it is back (real evaluation worker and sender)."""

import json
from collections import Counter
from decimal import Decimal

import pytest

from rewards.webhooks.models import WebhookDelivery
from tests.rewards.test_concurrency import bulk_events
from tests.rewards.webhooks.support import Receiver, endpoint_for
from tests.support import celery_worker, free_port, wait_until

from .support import Partner, ledger_check, settled, stack_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]
EVENTS = 20


def test_deliveries_to_a_receiver_that_was_down_are_retried_and_each_arrives_once(
    private_db, broker, tmp_path
):
    partner = Partner()
    partner.campaign("every", reward_value=Decimal("1"))
    port = free_port()  # nothing listens there yet: every attempt is refused
    endpoint_for(partner.partnership, f"http://127.0.0.1:{port}/hooks", types=["reward.issued"])
    deliveries = WebhookDelivery.objects.filter(endpoint__partnership=partner.partnership)
    env = stack_env(private_db.url, broker)
    receiver = None

    with (
        celery_worker(env, tmp_path / "evaluation.log", queues="celery", beat=True),
        celery_worker(
            env,
            tmp_path / "sender.log",
            queues="webhooks",
            pool="threads",
            concurrency=4,
            include="tests.faults.fast_retries",
        ),
    ):
        bulk_events(partner.trigger, EVENTS)
        wait_until(settled(partner, EVENTS), 60, "every event evaluated (see evaluation.log)")
        wait_until(
            lambda: deliveries.filter(attempts__gte=3).count() == EVENTS,
            60,
            "each delivery tried three times while the receiver is down (see sender.log)",
        )
        assert not deliveries.exclude(status="pending").exists()
        try:
            receiver = Receiver(port=port)
            wait_until(
                lambda: deliveries.filter(status="succeeded").count() == EVENTS,
                60,
                "every delivery made once the receiver is back (see sender.log)",
            )
        finally:
            if receiver is not None:
                receiver.close()

    assert ledger_check(partner) == {"every": (EVENTS, Decimal(EVENTS))}
    assert set(deliveries.values_list("status", flat=True)) == {"succeeded"}
    sent = Counter(headers["Webhook-Id"] for headers, _, _ in receiver.accepted())
    assert sent == Counter({str(pk): 1 for pk in deliveries.values_list("id", flat=True)})
    rewarded = {json.loads(body)["data"]["reward_id"] for _, body, _ in receiver.accepted()}
    assert len(rewarded) == EVENTS
    for delivery in deliveries:
        refused, delivered = delivery.history[:-1], delivery.history[-1]
        assert len(refused) >= 2 and all(a["status_code"] is None for a in refused)
        assert delivered["status_code"] == 200
