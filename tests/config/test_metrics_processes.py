"""Metrics and logs of real processes: gunicorn with several workers and a Celery prefork worker
sharing PROMETHEUS_MULTIPROC_DIR, as README and docs/operations.md run them."""

import concurrent.futures
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import ApiKeyFactory, CampaignFactory, TriggerFactory
from tests.support import celery_worker, free_port, http_ready, process_env, wait_until, web_server
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BODY = {
    "trigger_name": "transaction_completed",
    "transaction_context": {"amount": 42.5, "currency": "USD", "merchant_category": "5411"},
}


def scrape(base: str) -> dict:
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_every_process_is_counted_whichever_served_or_evaluated(tmp_path):
    key = ApiKeyFactory()
    trigger = TriggerFactory(partnership=key.partnership)
    CampaignFactory(trigger=trigger)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = process_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/partnerships/{key.partnership_id}/triggers"

    def ingest(index: int) -> int:
        body = {**BODY, "external_user_id": f"user-{index}"}
        with httpx.Client(timeout=10) as client:  # a connection of its own each
            return client.post(url, json=body, headers={"x-api-key": key.plaintext}).status_code

    json_logs = {**env, "LOG_FORMAT": "json"}
    node_port = free_port()  # a worker node's own endpoint (config.metrics_node)

    def web_workers_counted(master: int) -> int:
        """Web workers that have a counter file: each process writes its own."""
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return sum((metrics_dir / f"counter_{pid}.db").exists() for pid in workers)

    with (
        web_server(port, env, tmp_path / "web.log", workers=2) as web,
        celery_worker(json_logs, tmp_path / "worker.log", concurrency=2, queues="celery"),
        web_server(node_port, env, tmp_path / "node.log", app="config.metrics_node"),
    ):
        wait_until(lambda: http_ready(f"{base}/healthz"), 30, "web server up")
        sent = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            # Until both web workers have served some ingests, at most 400.
            while sent < 400 and web_workers_counted(web.pid) < 2:
                statuses = list(pool.map(ingest, range(sent, sent + 40)))
                assert statuses == [200] * 40
                sent += 40
        served = web_workers_counted(web.pid)
        wait_until(
            lambda: TriggerEvent.objects.filter(status="processed").count() == sent,
            60,
            "every event evaluated (see worker.log)",
        )
        wait_until(
            lambda: scrape(base).get(("rewards_rewards_issued_total", (("mode", "live"),))) == sent,
            10,
            "the worker's rewards counted",
        )
        samples = scrape(base)
        node = f"http://127.0.0.1:{node_port}"
        wait_until(lambda: http_ready(f"{node}/metrics"), 30, "the node's endpoint up")
        on_node = scrape(node)

    accepted = ("rewards_events_accepted_total", (("mode", "live"), ("replayed", "false")))
    assert samples[accepted] == sent
    latency = ("rewards_evaluation_latency_seconds_count", (("status", "processed"),))
    assert samples[latency] == sent
    assert served == 2
    assert on_node[("rewards_rewards_issued_total", (("mode", "live"),))] == sent
    worker_lines = [
        json.loads(line)
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(line["logger"].startswith("celery") for line in worker_lines)  # Celery's, as JSON


def test_no_key_or_token_reaches_the_server_logs(tmp_path):
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    app_trigger = {"name": "app_opened", "context_schema": {"type": "object"}}
    TriggerFactory(partnership=key.partnership, client_sendable=True, **app_trigger)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    partnership = f"{base}/partnerships/{key.partnership_id}"
    wrong_key = f"{key.plaintext[:-4]}abcd"

    with web_server(port, process_env(LOG_FORMAT="json", LOG_LEVEL="DEBUG"), log):
        wait_until(lambda: http_ready(f"{base}/healthz"), 30, "web server up")
        with httpx.Client(timeout=10) as client:
            issued = client.post(
                f"{partnership}/users/alice/tokens",
                json={"scopes": ["trigger:app_opened"]},
                headers={"x-api-key": key.plaintext},
            )
            token = issued.json()["data"]["token"]
            answers = [
                client.post(
                    f"{partnership}/triggers",
                    json={**BODY, "external_user_id": "u"},
                    headers={"x-api-key": key.plaintext},
                ),
                client.post(
                    f"{partnership}/triggers",
                    json={"trigger_name": "app_opened", "transaction_context": {}},
                    headers={"authorization": f"Bearer {token}"},
                ),
                client.post(f"{partnership}/triggers", json=BODY, headers={"x-api-key": wrong_key}),
                client.post(
                    f"{partnership}/triggers",
                    json={"trigger_name": "nope"},
                    headers={"x-api-key": key.plaintext},
                ),
                client.post(
                    f"{partnership}/triggers",
                    json=BODY,
                    headers={"authorization": f"Bearer {token}x"},
                ),
                client.get(f"{partnership}/users/alice/balance", headers={"x-api-key": wrong_key}),
            ]
    assert [answer.status_code for answer in answers][:2] == [200, 200]
    assert all(answer.status_code >= 400 for answer in answers[2:])

    lines = log.read_text().splitlines()
    access = [json.loads(line) for line in lines if '"logger":"gunicorn.access"' in line]
    assert len(access) >= 7  # the access log ran, as JSON lines
    accepted = [line for line in lines if "Trigger event accepted" in line]
    assert accepted and all('"trigger_event_id"' in line for line in accepted)
    secret = key.plaintext.split(".", 1)[1]
    for leaked in (key.plaintext, secret, wrong_key, token, token.split(".")[-1]):
        assert leaked not in log.read_text()
