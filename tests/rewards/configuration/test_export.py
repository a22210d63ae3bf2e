import json

import yaml

from rewards.webhooks.models import WebhookEndpoint
from tests.factories import PartnershipFactory

from .support import apply, exported, plan, text_of


def test_export_lists_the_configuration_in_a_stable_order_without_secrets(configured):
    text = text_of(configured)

    document = yaml.safe_load(text)
    assert list(document) == ["format_version", "settings", "triggers", "campaigns", "webhooks"]
    assert document["format_version"] == 1
    assert document["settings"]["time_zone"] == "UTC"
    assert [t["name"] for t in document["triggers"]] == ["signup", "transaction_completed"]
    cashback = document["campaigns"][0]
    assert cashback["slug"] == "cashback"
    assert cashback["trigger"] == "transaction_completed"
    assert cashback["reward_max"] == "10.5"  # canonical: no trailing zeros
    assert cashback["budget"] == "1000"
    assert cashback["starts_at"] == "2026-01-01T00:00:00+00:00"
    assert "status" not in cashback  # lifecycle state is not configuration
    assert [(w["url"], w["modes"]) for w in document["webhooks"]] == [
        ("https://hooks.example.com/rewards", "live"),
        ("https://hooks.example.com/rewards", "test"),
    ]
    for endpoint in WebhookEndpoint.objects.filter(partnership=configured):
        assert endpoint.secret not in text
    assert "secret" not in text and "pk_live" not in text
    assert text_of(configured) == text


def test_export_as_json_is_the_same_document(configured):
    assert json.loads(text_of(configured, "json")) == yaml.safe_load(text_of(configured))


def test_an_exported_document_plans_nothing(configured):
    assert plan(configured, exported(configured)).changes == ()


def test_round_trip_export_apply_to_an_empty_partnership_export_again_is_identical(
    configured, operator
):
    empty = PartnershipFactory()

    apply(empty, exported(configured), operator)

    assert text_of(empty) == text_of(configured)
    assert text_of(empty, "json") == text_of(configured, "json")
    assert plan(empty, exported(configured)).changes == ()
