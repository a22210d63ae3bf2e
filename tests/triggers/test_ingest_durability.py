"""Ingest under real concurrency and with the broker down (real processes, committed data)."""

import threading

import httpx
import orjson
import pytest
from django.db import connection
from rest_framework.test import APIClient

from partnerships.models import EndUser
from tests.factories import ApiKeyFactory, TriggerFactory
from tests.support import (
    celery_worker,
    free_port,
    http_ready,
    process_env,
    redis_server,
    wait_until,
    web_server,
)
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BODY = {
    "trigger_name": "transaction_completed",
    "external_user_id": "racer",
    "transaction_context": {"amount": 30, "currency": "EUR"},
}


def race(count: int, request) -> list:
    """Runs ``request(client)`` in ``count`` threads released at once; returns the responses."""
    return at_once(*[request] * count)


def at_once(*requests) -> list:
    """Runs each ``request(client)`` in a thread, all released at once; returns the responses."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def run(index: int) -> None:
        client = APIClient()
        barrier.wait()
        try:
            responses[index] = requests[index](client)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_fifty_concurrent_requests_with_one_key_make_one_event():
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    url = f"/partnerships/{key.partnership_id}/triggers"

    responses = race(
        50,
        lambda client: client.post(
            url,
            orjson.dumps(BODY),
            content_type="application/json",
            HTTP_X_API_KEY=key.plaintext,
            HTTP_IDEMPOTENCY_KEY="one-key",
        ),
    )

    assert [r.status_code for r in responses] == [200] * 50
    ids = {r.json()["data"]["trigger_event_id"] for r in responses}
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(ids) == 1
    assert len(replays) == 49
    assert TriggerEvent.objects.count() == 1
    assert EndUser.objects.count() == 1


def test_retries_sent_at_once_get_one_event_and_a_test_request_with_the_key_its_own():
    live_key = ApiKeyFactory()
    test_key = ApiKeyFactory(partnership=live_key.partnership, mode="test")
    TriggerFactory(partnership=live_key.partnership)
    url = f"/partnerships/{live_key.partnership_id}/triggers"
    pairs = 40

    def sender(key, index: int):
        # A new user each round: the statement that also creates the user.
        body = {**BODY, "external_user_id": f"racer-{index}"}
        return lambda client: client.post(
            url,
            orjson.dumps(body),
            content_type="application/json",
            HTTP_X_API_KEY=key.plaintext,
            HTTP_IDEMPOTENCY_KEY=f"order-{index}",
        )

    for index in range(pairs):
        live, retry, test = at_once(
            sender(live_key, index), sender(live_key, index), sender(test_key, index)
        )
        assert [r.status_code for r in (live, retry, test)] == [200] * 3
        live_id = live.json()["data"]["trigger_event_id"]
        assert retry.json()["data"]["trigger_event_id"] == live_id
        assert [r.headers.get("Idempotent-Replayed") for r in (live, retry)].count("true") == 1
        assert test.json()["data"]["trigger_event_id"] != live_id
        assert "Idempotent-Replayed" not in test.headers

    modes = list(TriggerEvent.objects.values_list("mode", flat=True))
    assert sorted(modes) == ["live"] * pairs + ["test"] * pairs
    assert EndUser.objects.count() == pairs


def test_concurrent_first_events_of_a_new_user_create_it_once():
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    url = f"/partnerships/{key.partnership_id}/triggers"

    responses = race(
        30,
        lambda client: client.post(
            url, orjson.dumps(BODY), content_type="application/json", HTTP_X_API_KEY=key.plaintext
        ),
    )

    assert [r.status_code for r in responses] == [200] * 30
    assert EndUser.objects.count() == 1
    assert TriggerEvent.objects.count() == 30
    assert len({r.json()["data"]["user_uuid"] for r in responses}) == 1


def test_events_accepted_while_the_broker_is_down_are_processed_once_it_is_back(tmp_path):
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    broker_port, web_port = free_port(), free_port()
    broker = f"redis://127.0.0.1:{broker_port}/0"
    env = process_env(CELERY_BROKER_URL=broker, EVENT_DISPATCH_INTERVAL="0.5")
    base = f"http://127.0.0.1:{web_port}"

    # The web server runs against a broker that is not there.
    with web_server(web_port, env, tmp_path / "web.log"):
        wait_until(lambda: http_ready(f"{base}/healthz"), 30, "web server up")
        readiness = httpx.get(f"{base}/readyz", timeout=5)
        assert readiness.status_code == 503
        assert readiness.json()["data"]["checks"]["broker"].startswith("error")

        accepted = []
        for index in range(20):
            response = httpx.post(
                f"{base}/partnerships/{key.partnership_id}/triggers",
                json={**BODY, "external_user_id": f"user-{index}"},
                headers={"x-api-key": key.plaintext},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            accepted.append(response.json()["data"]["trigger_event_id"])

    assert TriggerEvent.objects.filter(pk__in=accepted, status="queued").count() == 20

    # The broker comes back with a worker and the scheduler: nothing was lost.
    with (
        redis_server(broker_port, tmp_path / "redis.log"),
        celery_worker(env, tmp_path / "worker.log", beat=True),
    ):
        wait_until(
            lambda: TriggerEvent.objects.filter(pk__in=accepted, status="processed").count() == 20,
            60,
            "every accepted event processed (see worker.log)",
        )
    assert TriggerEvent.objects.count() == 20


def test_accepted_events_wake_the_workers_without_the_scheduler(tmp_path):
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    web_port = free_port()
    env = process_env()
    base = f"http://127.0.0.1:{web_port}"

    with (
        web_server(web_port, env, tmp_path / "web.log"),
        celery_worker(env, tmp_path / "worker.log", beat=False),
    ):
        wait_until(lambda: http_ready(f"{base}/readyz"), 30, "web server ready")
        response = httpx.post(
            f"{base}/partnerships/{key.partnership_id}/triggers",
            json=BODY,
            headers={"x-api-key": key.plaintext},
            timeout=10,
        )
        event_id = response.json()["data"]["trigger_event_id"]

        wait_until(
            lambda: TriggerEvent.objects.filter(pk=event_id, status="processed").exists(),
            30,
            "the event processed by a woken worker (see worker.log)",
        )
