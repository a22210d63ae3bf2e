import json

import pytest

from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def add_trigger(admin_client, partnership, **fields):
    data = {
        "partnership": partnership.id,
        "name": "transaction_completed",
        "description": "",
        "status": "active",
        "context_schema": json.dumps({"type": "object"}),
        **fields,
    }
    return admin_client.post("/pilot/triggers/trigger/add/", data)


def test_valid_trigger_is_saved(admin_client, partnership):
    schema = {"type": "object", "properties": {"amount": {"type": "number"}}}

    response = add_trigger(admin_client, partnership, context_schema=json.dumps(schema))

    assert response.status_code == 302
    assert Trigger.objects.get().context_schema == schema


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "objekt"},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
        {"type": "array"},
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
        {"$ref": "http://127.0.0.1:9/remote.json"},
        ["not", "a", "schema"],
    ],
)
def test_invalid_schema_cannot_be_saved(admin_client, partnership, schema):
    response = add_trigger(admin_client, partnership, context_schema=json.dumps(schema))

    assert response.status_code == 200
    assert "context_schema" in response.context["adminform"].form.errors
    assert not Trigger.objects.exists()


@pytest.mark.parametrize("name", ["Transaction", "1st", "with space", "x" * 65, ""])
def test_invalid_trigger_name_cannot_be_saved(admin_client, partnership, name):
    response = add_trigger(admin_client, partnership, name=name)

    assert response.status_code == 200
    assert not Trigger.objects.exists()


def test_trigger_event_list_loads_in_pilot(admin_client, trigger):
    assert admin_client.get("/pilot/triggers/triggerevent/").status_code == 200
