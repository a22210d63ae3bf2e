"""Logs: JSON lines (LOG_FORMAT=json) that name the trigger events they are about, and no key,
token or secret in any line."""

import io
import json
import logging

import orjson
import pytest
from django.db import connection

from config.logs import JsonFormatter
from partnerships import roles
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.sending import webhook_deliveries_send_due
from tests.factories import CampaignFactory, TriggerEventFactory, TriggerFactory
from tests.mgmt.conftest import operator, staff_client
from tests.mgmt.conftest import url as mgmt_url
from tests.rewards.conftest import process_batch
from tests.rewards.webhooks.support import Receiver, endpoint_for
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Everything logged meanwhile, as LOG_FORMAT=json writes it: a list of parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    lines: list[dict] = []

    def read() -> list[dict]:
        lines[:] = [json.loads(line) for line in stream.getvalue().splitlines()]
        return lines

    yield read
    root.removeHandler(handler)
    root.setLevel(level)


def about(lines: list[dict], text: str) -> list[dict]:
    return [line for line in lines if text in line["message"]]


def test_a_json_line_has_its_fields_and_the_traceback(json_lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("somewhere").exception("It broke: %s", "here")

    (line,) = about(json_lines(), "It broke")
    assert line["message"] == "It broke: here"
    assert (line["level"], line["logger"]) == ("ERROR", "somewhere")
    assert line["time"].endswith("+00:00") and line["pid"]
    assert "ValueError: boom" in line["exception"]
    assert "trigger_event_id" not in line


def test_lines_written_while_a_batch_is_evaluated_name_its_events(trigger, json_lines):
    events = [TriggerEventFactory(trigger=trigger) for _ in range(2)]

    def processor(batch):
        logging.getLogger("rewards.somewhere").warning("Looking at the batch")
        raise RuntimeError("bad batch")

    process_batch(processor=processor)

    lines = json_lines()
    ids = sorted(str(event.id) for event in events)
    whole = about(lines, "Looking at the batch")[0]
    assert sorted(whole["trigger_event_ids"]) == ids and whole["trigger_events"] == 2
    assert sorted(about(lines, "splitting it")[0]["trigger_event_ids"]) == ids
    # Then each event alone, charged the attempt: one id per line.
    retried = about(lines, "will be retried")
    assert sorted(line["trigger_event_id"] for line in retried) == ids
    alone = about(lines, "Looking at the batch")[1:]
    assert sorted(line["trigger_event_id"] for line in alone) == ids


def test_an_events_evaluation_error_names_it(trigger, json_lines, monkeypatch):
    event = TriggerEventFactory(trigger=trigger)
    CampaignFactory(trigger=trigger)

    def broken(*args, **kwargs):
        raise KeyError("no such thing")

    monkeypatch.setattr("rewards.services.evaluation.event_verdicts", broken)
    process_batch()

    (line,) = about(json_lines(), "Evaluating trigger event")
    assert line["trigger_event_id"] == str(event.id)
    assert "KeyError" in line["exception"]


def test_webhook_lines_name_the_event_they_are_about(trigger, json_lines):
    hook = Receiver(statuses=[500])
    try:
        endpoint_for(trigger.partnership, hook.url)
        CampaignFactory(trigger=trigger)
        event = TriggerEventFactory(trigger=trigger)
        process_batch()
        webhook_deliveries_send_due()
    finally:
        hook.close()

    (line,) = about(json_lines(), "Webhook delivery")
    assert line["message"].endswith("failed: 500")
    assert line["trigger_event_id"] == str(event.id)


def test_no_key_token_or_secret_is_logged(
    partner_client, api_key, client, caplog, django_user_model
):
    """Requests with a key, a user token, a staff token and wrong ones, error paths, a webhook
    signed with a secret: with every logger at DEBUG, SQL included, none of them is logged."""
    partnership = api_key.partnership
    staff = staff_client(operator(django_user_model, "ops", roles.ADMIN, partnership), roles.ADMIN)
    TriggerFactory(partnership=partnership)
    TriggerFactory(
        partnership=partnership,
        name="app_opened",
        context_schema={"type": "object"},
        client_sendable=True,
    )
    hook = Receiver(statuses=[500])
    endpoint = endpoint_for(partnership, hook.url)
    secret = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    token = partner_client.post(
        f"/partnerships/{partnership.id}/users/alice/tokens",
        {"scopes": ["trigger:app_opened"]},
        format="json",
    ).json()["data"]["token"]
    signup = {"name": "signup", "context_schema": {"type": "object"}}
    CampaignFactory(trigger=TriggerFactory(partnership=partnership, **signup))
    wrong_key = f"{api_key.plaintext[:-4]}abcd"
    url = f"/partnerships/{partnership.id}/triggers"
    body = {"trigger_name": "signup", "external_user_id": "u", "transaction_context": {}}

    def post(payload, **headers):
        return client.post(url, orjson.dumps(payload), content_type="application/json", **headers)

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True
    try:
        statuses = [
            post(body, HTTP_X_API_KEY=api_key.plaintext).status_code,
            post(
                {"trigger_name": "app_opened", "transaction_context": {}},
                HTTP_AUTHORIZATION=f"Bearer {token}",
            ).status_code,
            post(body, HTTP_X_API_KEY=wrong_key).status_code,
            post(body, HTTP_AUTHORIZATION=f"Bearer {token}x").status_code,
            post({"trigger_name": "nope"}, HTTP_X_API_KEY=api_key.plaintext).status_code,
            client.post(
                url, b"{", content_type="application/json", HTTP_X_API_KEY=wrong_key
            ).status_code,
            client.get(
                f"/partnerships/{partnership.id}/users/alice/balance",
                HTTP_AUTHORIZATION=f"Bearer {token}x",
            ).status_code,
        ]
        statuses += [
            staff.get(mgmt_url(partnership, "triggers")).status_code,
            staff.post(mgmt_url(partnership, "triggers"), {"name": 5}, format="json").status_code,
            client.get(
                mgmt_url(partnership, "triggers"), HTTP_AUTHORIZATION=f"Bearer {staff.plaintext}x"
            ).status_code,
        ]
        process_batch()
        webhook_deliveries_send_due()
    finally:
        connection.force_debug_cursor = False
        hook.close()

    assert statuses[:2] == [200, 200] and all(status >= 400 for status in statuses[2:7])
    assert statuses[7] == 200 and all(status >= 400 for status in statuses[8:])
    assert TriggerEvent.objects.count() == 2
    assert any("INSERT" in record.getMessage() for record in caplog.records)  # SQL was logged
    assert about([{"message": r.getMessage()} for r in caplog.records], "Webhook delivery")
    formatter = JsonFormatter()
    logged = caplog.text + "".join(formatter.format(record) for record in caplog.records)
    for leaked in (api_key.plaintext, api_key.plaintext.split(".", 1)[1], wrong_key, secret):
        assert leaked not in logged
    for leaked in (token, token.split(".")[-1]):  # the user token, and its signature
        assert leaked not in logged
    assert staff.plaintext not in logged and staff.plaintext.split(".", 1)[-1] not in logged
