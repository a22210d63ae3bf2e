"""What a client can send is never a 500: bodies the schema allows but the domain refuses."""

import pytest

from partnerships import roles

from .conftest import operator, staff_client, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(django_user_model, partnership):
    user = operator(django_user_model, "root", roles.ADMIN, partnership, superuser=True)
    return staff_client(user, roles.ADMIN, partnership)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": 5},
        {"type": "array"},
        {"$ref": "https://evil.example/schema.json"},
        {"properties": []},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
        {"type": "object", "required": "amount"},
    ],
)
def test_a_bad_context_schema_is_422(api, partnership, schema):
    response = api.post(
        url(partnership, "triggers"), {"name": "odd", "context_schema": schema}, format="json"
    )
    assert response.status_code == 422, response.json()
    assert [e["field"] for e in response.json()["errors"]] == ["context_schema"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"facts": [{"name": 5}]}, "facts"),
        ({"facts": [{}]}, "facts"),
        ({"facts": [{"name": "n", "aggregate": "sum", "window_days": 7}]}, "facts"),
        ({"reward_value": "1e30"}, "reward_value"),
        ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, None),
        ({"condition": "user.tier == 'gold' &&"}, "condition"),
        ({"reward_type": "expression", "reward_expression": "1/"}, "reward_expression"),
        ({"period": "fortnight"}, "period"),
    ],
)
def test_a_bad_campaign_is_422(api, partnership, trigger, changes, field):
    body = {"trigger_id": trigger.pk, "name": "Odd", "slug": "odd", "reward_value": "1"}
    response = api.post(url(partnership, "campaigns"), {**body, **changes}, format="json")
    assert response.status_code == 422, response.json()
    if field:
        assert field in {e["field"] for e in response.json()["errors"]}
