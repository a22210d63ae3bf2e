"""Prometheus metrics at /metrics: what moves them, by exactly how much, and who may read them.

The counters live in this process (no PROMETHEUS_MULTIPROC_DIR under pytest) and other tests
move them too: each test reads them before and after. The multiprocess mode, with gunicorn's
workers: tests/config/test_metrics_processes.py.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from config.errors import ErrorCode
from config.metrics import histogram_observe_many
from rewards.webhooks.sending import webhook_deliveries_send_due
from tests.factories import CampaignFactory, TriggerEventFactory
from tests.rewards.conftest import process_batch
from tests.rewards.webhooks.support import Receiver, endpoint_for
from tests.triggers.test_ingest_api import event_body as body
from tests.triggers.test_ingest_api import send
from triggers.metrics import QUEUE_PARAMS, QUEUE_SQL

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict:
    """{(sample name, sorted labels): value} of one /metrics answer."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- Ingest --------------------------------------------------------------------------------


def test_ingests_count_accepted_by_mode_and_replay_and_refused_by_code(
    client, partner_client, test_client, api_client, trigger
):
    before = scrape(client)

    assert send(partner_client, trigger.partnership_id, body()).status_code == 200
    keyed = body(external_user_id="user-2")
    assert send(partner_client, trigger.partnership_id, keyed, HTTP_IDEMPOTENCY_KEY="k").json()
    assert send(partner_client, trigger.partnership_id, keyed, HTTP_IDEMPOTENCY_KEY="k").json()
    assert send(test_client, trigger.partnership_id, body()).status_code == 200
    invalid = body(transaction_context={"amount": "lots"})
    assert send(partner_client, trigger.partnership_id, invalid).status_code == 422
    unknown = body(trigger_name="nope")
    assert send(partner_client, trigger.partnership_id, unknown).status_code == 404
    wrong_key = send(api_client, trigger.partnership_id, body(), HTTP_X_API_KEY="pk_live_x.nope")
    assert wrong_key.status_code in (400, 401)
    assert partner_client.get(f"/partnerships/{trigger.partnership_id}/triggers").status_code == 405

    after = scrape(client)
    accepted = "rewards_events_accepted_total"
    assert moved(before, after, accepted, mode="live", replayed="false") == 2
    assert moved(before, after, accepted, mode="live", replayed="true") == 1
    assert moved(before, after, accepted, mode="test", replayed="false") == 1
    refused = "rewards_events_refused_total"
    assert moved(before, after, refused, code=ErrorCode.VALIDATION_ERROR) == 1
    assert moved(before, after, refused, code=ErrorCode.TRIGGER_DOES_NOT_EXIST) == 1
    assert moved(before, after, refused, code=wrong_key.json()["code"]) == 1
    assert moved(before, after, refused, code=ErrorCode.METHOD_NOT_ALLOWED) == 1


def test_the_fast_path_serves_the_same_counted_view():
    """gunicorn's application routes ingest around Django's stack to the view counted above."""
    from config.wsgi import application
    from triggers.apis import TriggerEventCreateApi

    routed = [view.view_class for _, view in application.routes]
    assert routed == [TriggerEventCreateApi]


# --- The workers ---------------------------------------------------------------------------


def test_a_processed_batch_observes_each_events_latency_and_counts_its_rewards(
    client, trigger, django_capture_on_commit_callbacks
):
    CampaignFactory(trigger=trigger)
    due = timezone.now() - timedelta(seconds=20)
    for _ in range(3):
        TriggerEventFactory(trigger=trigger, received_at=due, deliver_at=due)
    TriggerEventFactory(trigger=trigger, mode="test")
    before = scrape(client)

    with django_capture_on_commit_callbacks(execute=True):
        assert process_batch() == 4

    after = scrape(client)
    latency = "rewards_evaluation_latency_seconds"
    assert moved(before, after, f"{latency}_count", status="processed") == 4
    assert moved(before, after, f"{latency}_bucket", status="processed", le="10.0") == 1
    assert moved(before, after, f"{latency}_bucket", status="processed", le="30.0") == 4
    assert 60 <= moved(before, after, f"{latency}_sum", status="processed") < 70
    issued = "rewards_rewards_issued_total"
    assert moved(before, after, issued, mode="live") == 3
    assert moved(before, after, issued, mode="test") == 1


def test_a_batch_rolled_back_counts_nothing(client, trigger, django_capture_on_commit_callbacks):
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    before = scrape(client)

    def broken(events):
        from rewards.services.evaluation import trigger_events_evaluate

        trigger_events_evaluate(events)  # issues, then the batch fails: all rolled back
        raise RuntimeError("boom")

    with django_capture_on_commit_callbacks(execute=True):
        process_batch(processor=broken)

    after = scrape(client)
    assert moved(before, after, "rewards_rewards_issued_total", mode="live") == 0
    assert moved(before, after, "rewards_evaluation_latency_seconds_count", status="processed") == 0


def test_observing_many_adds_what_observing_each_would(client):
    values = [0.0, 0.004, 0.01, 0.3, 2.5, 7, 7, 1e6]
    one, many = (CollectorRegistry(), CollectorRegistry())
    each = Histogram("h", "h", registry=one, buckets=(0.01, 1, 10))
    batch = Histogram("h", "h", registry=many, buckets=(0.01, 1, 10))

    for observed in values:
        each.observe(observed)
    histogram_observe_many(batch, values)

    def samples(registry):
        (family,) = registry.collect()
        return [(s.name, s.labels, s.value) for s in family.samples if "created" not in s.name]

    assert samples(many) == samples(one)


def test_a_reversal_counts_the_rewards_it_took_back(
    client, partner_client, trigger, django_capture_on_commit_callbacks
):
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)
    process_batch()
    before = scrape(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = partner_client.post(
            f"/partnerships/{trigger.partnership_id}/triggers/reverse",
            {"trigger_event_id": str(event.id), "reason": "refund"},
            format="json",
        )

    assert response.status_code == 200, response.content
    after = scrape(client)
    assert moved(before, after, "rewards_rewards_reversed_total", mode="live") == 1
    assert moved(before, after, "rewards_rewards_reversed_total", mode="test") == 0


def test_a_failed_webhook_delivery_is_counted(client, trigger):
    hook = Receiver(statuses=[500])
    try:
        endpoint_for(trigger.partnership, hook.url)
        CampaignFactory(trigger=trigger)
        TriggerEventFactory(trigger=trigger)
        process_batch()
        before = scrape(client)

        assert webhook_deliveries_send_due() == 1
    finally:
        hook.close()

    after = scrape(client)
    failures = "rewards_webhook_delivery_failures_total"
    assert moved(before, after, failures, final="false") == 1
    assert moved(before, after, failures, final="true") == 0


# --- The queue, read at scrape time ---------------------------------------------------------


def test_queue_depth_and_oldest_age_are_read_from_the_events(client, trigger):
    now = timezone.now()
    for seconds in (120, 30, 5):
        TriggerEventFactory(trigger=trigger, deliver_at=now - timedelta(seconds=seconds))
    TriggerEventFactory(trigger=trigger, deliver_at=now - timedelta(hours=5), attempts=1)
    for seconds in (60, 200):
        past = now - timedelta(seconds=seconds)
        TriggerEventFactory(trigger=trigger, status="scheduled", deliver_at=past)
    TriggerEventFactory(trigger=trigger, status="scheduled", deliver_at=now + timedelta(hours=1))
    TriggerEventFactory(trigger=trigger, status="processed", deliver_at=now - timedelta(days=1))

    samples = scrape(client)

    assert value(samples, "rewards_queue_read_ok") == 1
    assert value(samples, "rewards_queue_events", state="new") == 3
    assert value(samples, "rewards_queue_events", state="retrying") == 1
    assert value(samples, "rewards_queue_events", state="due") == 2
    # The oldest new or due event (the retrying one waits its delay): 200 s, on the
    # database's clock (in a test, its transaction's start: a little earlier).
    assert 195 <= value(samples, "rewards_queue_oldest_age_seconds") <= 201


def test_an_empty_queue_reads_zero(client):
    samples = scrape(client)

    assert value(samples, "rewards_queue_events", state="new") == 0
    assert value(samples, "rewards_queue_oldest_age_seconds") == 0


def test_the_queue_query_reads_only_partial_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {QUEUE_SQL}", QUEUE_PARAMS)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Seq Scan" not in plan
    for index in ("event_new_idx", "event_retry_idx", "event_scheduled_idx"):
        assert index in plan, plan


# --- Who may read them ----------------------------------------------------------------------


def test_a_scrape_from_another_network_gets_404(client, partner_client):
    outside = {"REMOTE_ADDR": "203.0.113.9"}

    response = client.get("/metrics", **outside)
    with_key = partner_client.get("/metrics", **outside)  # never under the API key

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.NOT_FOUND
    assert with_key.status_code == 404


def test_a_scrape_with_the_token_is_answered_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    outside = {"REMOTE_ADDR": "203.0.113.9"}

    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outside)
    samples = scrape(client, HTTP_AUTHORIZATION="Bearer scrape-secret", **outside)

    assert wrong.status_code == 404
    assert value(samples, "rewards_queue_read_ok") == 1


def test_allowed_networks_see_the_client_address_behind_proxies(client, settings):
    settings.METRICS_ALLOWED_CIDRS = ["10.1.0.0/16"]
    settings.NUM_PROXIES = 1
    proxy = {"REMOTE_ADDR": "192.0.2.1"}

    scrape(client, HTTP_X_FORWARDED_FOR="10.1.2.3", **proxy)
    refused = client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1", **proxy)

    assert refused.status_code == 404  # loopback is no longer listed


def test_a_worker_nodes_endpoint_keeps_the_same_rules(settings):
    from config.metrics_node import application

    settings.METRICS_TOKEN = "scrape-secret"

    def get(path: str, address: str, authorization: str = "") -> str:
        started = []
        environ = {"PATH_INFO": path, "REMOTE_ADDR": address, "HTTP_AUTHORIZATION": authorization}
        body = b"".join(application(environ, lambda status, headers: started.append(status)))
        return f"{started[0]} {body.decode()}"

    assert get("/metrics", "127.0.0.1").startswith("200 ")
    assert "rewards_events_accepted_total" in get("/metrics", "127.0.0.1")
    assert get("/metrics", "203.0.113.9").startswith("404 ")
    assert get("/metrics", "203.0.113.9", "Bearer scrape-secret").startswith("200 ")
    assert get("/other", "127.0.0.1").startswith("404 ")
