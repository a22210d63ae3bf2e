"""The trigger page in Pilot: the field editor, the example and its curl, "Send a test event"."""

import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from partnerships.models import AuditEntry, PartnershipMember
from partnerships.pilot_revision import LOADED
from tests.factories import TRANSACTION_SCHEMA, ApiKeyFactory, PartnershipFactory, TriggerFactory
from triggers.models import Trigger, TriggerEvent
from triggers.services.test_events import NO_TEST_MODE

pytestmark = pytest.mark.django_db

ROW_DEFAULTS = {
    "name": "",
    "type": "string",
    "description": "",
    "values": "",
    "minimum": "",
    "maximum": "",
    "min_length": "",
    "max_length": "",
    "pattern": "",
}


def rows_data(rows: list[dict]) -> dict:
    """The rows as the page posts them (a formset with the prefix "rows")."""
    data = {"rows-TOTAL_FORMS": len(rows), "rows-INITIAL_FORMS": 0}
    for index, row in enumerate(rows):
        for key, value in {**ROW_DEFAULTS, **row}.items():
            if key == "required":
                if value:
                    data[f"rows-{index}-required"] = "on"
            else:
                data[f"rows-{index}-{key}"] = value
    return data


def trigger_data(partnership, rows: list[dict], **fields) -> dict:
    return {
        "partnership": partnership.id,
        "name": "purchase",
        "description": "",
        "status": "active",
        "schema_mode": "fields",
        "context_schema": "{ stale text the rows replace",
        **rows_data(rows),
        **fields,
    }


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_trigger_defined_with_rows_saves_their_json_schema(admin_client, partnership):
    rows = [
        {"name": "amount", "type": "number", "required": True, "minimum": "0"},
        {"name": "channel", "type": "enum", "values": "web\napp"},
        {"name": "store", "type": "object"},
        {"name": "store.city", "type": "string", "required": True, "max_length": "40"},
        {"name": "", "type": "string"},  # the page's blank row, left empty
    ]

    response = admin_client.post("/pilot/triggers/trigger/add/", trigger_data(partnership, rows))

    assert response.status_code == 302
    assert Trigger.objects.get().context_schema == {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0},
            "channel": {"type": "string", "enum": ["web", "app"]},
            "store": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 40}},
                "required": ["city"],
            },
        },
        "required": ["amount"],
    }


def test_bad_rows_show_their_errors_at_their_fields_and_nothing_is_saved(admin_client, partnership):
    rows = [
        {"name": "amount", "type": "number", "minimum": "10", "maximum": "5"},
        {"name": "amount", "type": "string"},
        {"name": "code", "type": "string", "pattern": "([A-Z]"},
        {"name": "channel", "type": "enum"},
    ]

    response = admin_client.post("/pilot/triggers/trigger/add/", trigger_data(partnership, rows))

    assert response.status_code == 200
    page = text(response)
    assert "Some field rows are not valid: see the rows." in page
    assert "Must be at least the minimum (10)" in page
    assert "Another field is named amount" in page
    assert "Not a valid regular expression" in page
    assert "An enum needs at least one value (one a line)" in page
    rows_errors = response.context["adminform"].form.rows.errors
    assert rows_errors[0] == {"maximum": ["Must be at least the minimum (10)"]}
    assert rows_errors[3] == {"values": ["An enum needs at least one value (one a line)"]}
    assert not Trigger.objects.exists()


def test_the_trigger_page_opens_in_the_field_editor_with_the_schemas_rows(admin_client, trigger):
    response = admin_client.get(f"/pilot/triggers/trigger/{trigger.pk}/change/")

    form = response.context["adminform"].form
    assert form.mode == "fields"
    assert [row["name"] for row in form.rows.initial] == ["amount", "currency", "merchant_category"]
    page = response.content.decode()
    assert 'value="^[A-Z]{3}$"' in page
    assert 'name="schema_mode" value="fields" checked' in page


def test_saving_the_rows_unchanged_keeps_the_schema(admin_client, trigger):
    rows = [
        {"name": "amount", "type": "number", "required": True, "minimum": "0"},
        {"name": "currency", "type": "string", "required": True, "pattern": "^[A-Z]{3}$"},
        {"name": "merchant_category", "type": "string"},
    ]
    data = trigger_data(trigger.partnership, rows, name=trigger.name, **{LOADED: trigger.revision})

    response = admin_client.post(f"/pilot/triggers/trigger/{trigger.pk}/change/", data)

    assert response.status_code == 302
    trigger.refresh_from_db()
    assert trigger.context_schema == TRANSACTION_SCHEMA


def test_a_schema_the_rows_cannot_express_opens_in_raw_json_and_is_kept(admin_client, partnership):
    schema = {
        "type": "object",
        "properties": {"amount": {"type": "number", "exclusiveMinimum": 0}},
        "additionalProperties": False,
    }
    trigger = TriggerFactory(partnership=partnership, context_schema=schema)

    response = admin_client.get(f"/pilot/triggers/trigger/{trigger.pk}/change/")

    assert response.context["adminform"].form.mode == "raw"
    assert (
        "This schema opens in raw JSON: the field editor cannot express it (The schema: "
        "additionalProperties (not in the field editor)). Saving keeps it exactly as written."
    ) in text(response)
    data = {
        "partnership": partnership.id,
        "name": trigger.name,
        "description": "now described",
        "status": "active",
        "schema_mode": "raw",
        "context_schema": json.dumps(schema),
        LOADED: trigger.revision,
    }
    response = admin_client.post(f"/pilot/triggers/trigger/{trigger.pk}/change/", data)
    assert response.status_code == 302
    trigger.refresh_from_db()
    assert trigger.context_schema == schema
    assert trigger.description == "now described"


def test_the_page_shows_an_example_payload_and_its_curl_without_a_key(
    admin_client, trigger, api_key
):
    response = admin_client.get(f"/pilot/triggers/trigger/{trigger.pk}/change/")

    page = response.content.decode()
    assert "It matches the schema (checked as the API checks it)." in page
    assert response.context["example"].context == {
        "amount": 25.0,
        "currency": "AAA",
        "merchant_category": "example",
    }
    curl = response.context["curl"]
    assert curl.startswith(
        f"curl -X POST http://testserver/partnerships/{trigger.partnership_id}/triggers"
    )
    assert "-H 'x-api-key: <YOUR_TEST_API_KEY>'" in curl
    assert '"trigger_name": "transaction_completed"' in curl
    assert api_key.plaintext not in page
    assert api_key.prefix not in page


def test_schema_check_converts_the_rows_without_saving(admin_client, partnership):
    rows = [{"name": "amount", "type": "integer", "minimum": "1"}]

    response = admin_client.post(
        "/pilot/triggers/trigger/add/schema-check/", trigger_data(partnership, rows)
    )

    assert json.loads(response.json()["schema"]) == {
        "type": "object",
        "properties": {"amount": {"type": "integer", "minimum": 1}},
    }
    assert response.json()["errors"] == []
    assert not Trigger.objects.exists()


def test_schema_check_reports_bad_rows_by_row_and_field(admin_client, partnership):
    rows = [{"name": "amount", "type": "integer", "minimum": "x"}]

    response = admin_client.post(
        "/pilot/triggers/trigger/add/schema-check/", trigger_data(partnership, rows)
    )

    assert response.json()["schema"] is None
    assert response.json()["row_errors"] == [
        {"row": 1, "field": "minimum", "message": "A number, e.g. 10 or 2.5"}
    ]


# Send a test event -----------------------------------------------------------------------


def send(client, trigger, context, user="user-1"):
    return client.post(
        f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/",
        {"external_user_id": user, "transaction_context": json.dumps(context)},
    )


VALID = {"amount": 42.5, "currency": "EUR"}


def operator(client, django_user_model, partnership, *codenames):
    user = django_user_model.objects.create_user("operator", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    PartnershipMember.objects.create(user=user, partnership=partnership)
    client.force_login(user)
    return user


def test_a_test_event_goes_through_ingest_in_test_mode_with_its_operator(
    client, django_user_model, trigger, test_key
):
    user = operator(
        client, django_user_model, trigger.partnership, "view_trigger", "send_test_event"
    )

    response = send(client, trigger, VALID)

    event = TriggerEvent.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/pilot/triggers/trigger/{trigger.pk}/test-events/{event.pk}/"
    assert (event.mode, event.status, event.context) == ("test", "queued", VALID)
    assert event.operator == user
    assert event.end_user.external_user_id == "user-1"
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.mode, audit.target_id) == (
        "event.send_test",
        user,
        "test",
        str(event.pk),
    )
    page = text(client.get(response["Location"]))
    assert "Queued" in page
    assert "Refresh" in page


def test_the_send_page_is_prefilled_with_the_example(admin_client, trigger):
    response = admin_client.get(f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/")

    form = response.context["form"]
    assert json.loads(form.initial["transaction_context"]) == {
        "amount": 25.0,
        "currency": "AAA",
        "merchant_category": "example",
    }


def test_an_invalid_context_shows_the_apis_field_errors_in_the_form(
    admin_client, trigger, test_key
):
    response = send(admin_client, trigger, {"amount": "ten", "currency": "EURO"})

    assert response.status_code == 200
    errors = response.context["form"].errors["transaction_context"]
    assert 'transaction_context.amount: "ten" is not of type "number"' in errors
    assert any(message.startswith("transaction_context.currency: ") for message in errors)
    assert "transaction_context.amount: &quot;ten&quot; is not of type" in text(response)
    assert not TriggerEvent.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_missing_user_is_the_apis_error_at_the_user_field(admin_client, trigger, test_key):
    response = send(admin_client, trigger, VALID, user="")

    assert response.context["form"].errors["external_user_id"] == [
        "external_user_id: Send external_user_id or user_uuid"
    ]
    assert not TriggerEvent.objects.exists()


def test_a_context_that_is_not_json_is_a_form_error(admin_client, trigger, test_key):
    response = admin_client.post(
        f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/",
        {"external_user_id": "u", "transaction_context": "{amount: 1"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["transaction_context"][0].startswith("Not valid JSON")


def test_a_partnership_without_a_test_key_does_not_accept_test_events(admin_client, trigger):
    ApiKeyFactory(partnership=trigger.partnership, mode="test", revoked_at=timezone.now())
    page = admin_client.get(f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/")
    assert NO_TEST_MODE in page.content.decode()

    response = send(admin_client, trigger, VALID)

    assert response.status_code == 200
    assert NO_TEST_MODE in response.context["form"].non_field_errors()
    assert not TriggerEvent.objects.exists()


def test_sending_needs_the_send_test_event_permission(client, django_user_model, trigger, test_key):
    operator(client, django_user_model, trigger.partnership, "view_trigger", "change_trigger")

    assert client.get(f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/").status_code == 403
    assert send(client, trigger, VALID).status_code == 403
    page = client.get(f"/pilot/triggers/trigger/{trigger.pk}/change/").content.decode()
    assert "Send a test event" not in page
    assert not TriggerEvent.objects.exists()


def test_an_operator_of_another_partnership_cannot_open_or_send(
    client, django_user_model, trigger, test_key
):
    operator(
        client,
        django_user_model,
        PartnershipFactory(),
        "view_trigger",
        "change_trigger",
        "send_test_event",
    )

    assert client.get(f"/pilot/triggers/trigger/{trigger.pk}/change/").status_code in (302, 404)
    assert client.get(f"/pilot/triggers/trigger/{trigger.pk}/send-test-event/").status_code == 404
    assert send(client, trigger, VALID).status_code == 404
    check = client.post(f"/pilot/triggers/trigger/{trigger.pk}/schema-check/", {})
    assert check.status_code == 404
    assert not TriggerEvent.objects.exists()
    assert "transaction_completed" not in client.get("/pilot/triggers/trigger/").content.decode()


def test_the_forms_errors_are_the_apis_errors_for_the_same_payload(
    admin_client, trigger, test_client
):
    context = {"amount": -1, "currency": 12, "extra": {"nested": True}}
    api = test_client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        {"trigger_name": trigger.name, "external_user_id": "u", "transaction_context": context},
        format="json",
    )

    response = send(admin_client, trigger, context, user="u")

    shown = response.context["form"].errors["transaction_context"]
    assert api.status_code == 422
    assert shown == [f"{error['field']}: {error['message']}" for error in api.json()["errors"]]
