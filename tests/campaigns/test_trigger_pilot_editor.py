"""The trigger page as campaigns see it: a test event's decisions in words, and the campaigns
a schema edit would break, listed before saving."""

import json
import re
from decimal import Decimal

import pytest

from config.json_input import NOT_FINITE, TOO_DEEP
from rewards.tasks import EVALUATION
from tests.factories import TRANSACTION_SCHEMA, CampaignFactory
from triggers.models import Trigger, TriggerEvent
from triggers.services.processing import trigger_events_process_batch

pytestmark = pytest.mark.django_db


def process() -> None:
    """The worker's pipeline until the queue is empty, as the worker's task runs it."""
    while trigger_events_process_batch(limit=500, **EVALUATION):
        pass


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_test_event_shows_its_decisions_in_words_once_evaluated(admin_client, trigger, test_key):
    CampaignFactory(
        trigger=trigger,
        name="Big spenders",
        slug="big-spenders",
        condition="context.amount >= 100.0",
        reward_value=Decimal("5"),
    )
    CampaignFactory(trigger=trigger, name="Everyone", slug="everyone", reward_value=Decimal("2"))
    sent = admin_client.post(
        f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/",
        {
            "external_user_id": "user-7",
            "transaction_context": json.dumps({"amount": 40, "currency": "USD"}),
        },
    )
    result_url = sent["Location"]
    assert "The workers evaluate it in the background" in text(admin_client.get(result_url))

    process()

    page = text(admin_client.get(result_url))
    event = TriggerEvent.objects.get()
    assert event.status == "processed"
    assert "Processed" in page
    assert (
        "<td>big-spenders</td><td>Condition not met</td><td></td><td>condition is false</td>"
        in page
    )
    assert "<td>everyone</td><td>Rewarded</td><td>2" in page


def change_data(trigger, schema: dict) -> dict:
    return {
        "partnership": trigger.partnership_id,
        "name": trigger.name,
        "description": trigger.description,
        "status": trigger.status,
        "schema_mode": "raw",
        "context_schema": json.dumps(schema),
    }


WITHOUT_AMOUNT = {"type": "object", "properties": {"currency": {"type": "string"}}}


def test_the_check_lists_the_campaigns_a_schema_would_break_without_saving(admin_client, trigger):
    CampaignFactory(
        trigger=trigger, name="Big spenders", slug="big", condition="context.amount >= 100.0"
    )
    CampaignFactory(
        trigger=trigger,
        name="Later",
        slug="later",
        status="draft",
        condition="context.amount >= 5.0",
    )
    CampaignFactory(trigger=trigger, name="Any currency", slug="any", condition="true")

    response = admin_client.post(
        f"/pilot/triggers/trigger/{trigger.pk}/schema-check/",
        change_data(trigger, WITHOUT_AMOUNT),
    )

    result = response.json()
    (refused,) = result["refused"]
    assert refused.startswith("Big spenders (big, active): condition: ")
    assert "undeclared reference to 'context.amount'" in refused
    (warned,) = result["warned"]
    assert warned.startswith("Later (later, draft): condition: ")
    assert json.loads(result["schema"]) == WITHOUT_AMOUNT
    trigger.refresh_from_db()
    assert trigger.context_schema == TRANSACTION_SCHEMA


def test_the_check_of_rows_that_break_nothing_lists_no_campaign(admin_client, trigger):
    CampaignFactory(trigger=trigger, condition="context.amount >= 100.0")
    data = {
        **change_data(trigger, {}),
        "schema_mode": "fields",
        "rows-TOTAL_FORMS": 1,
        "rows-INITIAL_FORMS": 0,
        "rows-0-name": "amount",
        "rows-0-type": "number",
    }

    result = admin_client.post(f"/pilot/triggers/trigger/{trigger.pk}/schema-check/", data).json()

    assert (result["refused"], result["warned"], result["errors"]) == ([], [], [])
    assert Trigger.objects.get().context_schema == TRANSACTION_SCHEMA


def test_saving_rows_that_break_an_active_campaign_is_refused_naming_it(admin_client, trigger):
    CampaignFactory(
        trigger=trigger, name="Big spenders", slug="big", condition="context.amount >= 100.0"
    )
    data = {
        **change_data(trigger, {}),
        "schema_mode": "fields",
        "rows-TOTAL_FORMS": 1,
        "rows-INITIAL_FORMS": 0,
        "rows-0-name": "currency",
        "rows-0-type": "string",
    }

    response = admin_client.post(f"/pilot/triggers/trigger/{trigger.pk}/change/", data)

    assert response.status_code == 200
    assert "This change would stop the active campaign Big spenders (big)" in text(response)
    assert Trigger.objects.get().context_schema == TRANSACTION_SCHEMA


@pytest.mark.parametrize(
    ("schema", "error"),
    [("[" * 3000 + "]" * 3000, TOO_DEEP), ('{"maximum": NaN}', NOT_FINITE)],
    ids=["deep", "nan"],
)
def test_a_raw_schema_python_cannot_parse_or_postgresql_store_is_a_form_error(
    admin_client, trigger, schema, error
):
    data = {**change_data(trigger, {}), "context_schema": schema}

    response = admin_client.post(f"/pilot/triggers/trigger/{trigger.pk}/change/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["context_schema"] == [error]
    assert Trigger.objects.get().context_schema == TRANSACTION_SCHEMA


def test_a_test_events_context_nested_too_deep_is_a_form_error(admin_client, trigger, test_key):
    response = admin_client.post(
        f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/",
        {"external_user_id": "user-7", "transaction_context": "[" * 3000 + "]" * 3000},
    )

    assert response.status_code in (200, 400)
    assert TOO_DEEP in text(response)
    assert not TriggerEvent.objects.exists()
