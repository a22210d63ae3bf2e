"""Values a document can carry that the database or the checks could choke on: each is a clear
error at its field (or a malformed document), never an exception of another kind, and nothing
is written."""

import pytest

from config.errors import ApplicationError
from rewards.configuration.document import document_parse

from .support import apply, campaign, exported, text_of


def _campaign(field, value):
    def edit(document):
        campaign(document, "cashback")[field] = value

    return edit


def _trigger(field, value):
    def edit(document):
        document["triggers"][0][field] = value

    return edit


def _setting(field, value):
    def edit(document):
        document["settings"][field] = value

    return edit


def _webhook(field, value):
    def edit(document):
        document["webhooks"][0][field] = value

    return edit


CASES = {
    "priority beyond an integer": (_campaign("priority", 10**30), "campaigns[cashback].priority"),
    "a cap beyond an integer": (
        _campaign("max_rewards", 10**20),
        "campaigns[cashback].max_rewards",
    ),
    "a decimal too long": (_campaign("budget", "1" * 24), "campaigns[cashback].budget"),
    "a decimal too fine": (
        _campaign("reward_value", "0.0000001"),
        "campaigns[cashback].reward_value",
    ),
    "February 30": (_campaign("ends_at", "2026-02-30T00:00:00Z"), "campaigns[cashback].ends_at"),
    "the end before the start": (
        _campaign("ends_at", "2025-01-01T00:00:00Z"),
        "campaigns[cashback].ends_at",
    ),
    "a slug with spaces": (_campaign("slug", "cash back"), "campaigns[cash back].slug"),
    "a long name": (_campaign("name", "x" * 1000), "campaigns[cashback].name"),
    "a rule that is not CEL": (
        _campaign("condition", "amount >>> 2"),
        "campaigns[cashback].condition",
    ),
    "a fact window as a float": (
        _campaign("facts", [{"name": "n", "aggregate": "count", "window_days": 30.5}]),
        "campaigns[cashback].facts",
    ),
    "a fact with unknown keys": (
        _campaign("facts", [{"name": "n", "aggregate": "count", "window_days": 3, "x": 1}]),
        "campaigns[cashback].facts",
    ),
    "a schema that is no schema": (
        _trigger("context_schema", {"type": "nonsense"}),
        "triggers[signup].context_schema",
    ),
    "a remote $ref": (
        _trigger("context_schema", {"$ref": "https://example.com/schema.json"}),
        "triggers[signup].context_schema",
    ),
    "a trigger name with capitals": (
        lambda document: document["triggers"].append({"name": "Sign Up"}),
        "triggers[Sign Up].name",
    ),
    "a zone that is not one": (_setting("time_zone", "Mars/Base"), "settings.time_zone"),
    "decimal places beyond 6": (
        _setting("reward_decimal_places", 40),
        "settings.reward_decimal_places",
    ),
    "lateness of 0 days": (
        _setting("max_event_lateness_days", 0),
        "settings.max_event_lateness_days",
    ),
    "an allow-list entry that is no network": (
        _setting("allowed_cidrs", ["10.0.0.0/33"]),
        "settings.allowed_cidrs",
    ),
    "a URL without a scheme": (
        _webhook("url", "hooks.example.com"),
        "webhooks[hooks.example.com (live)].url",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_value_is_an_error_at_its_field_and_nothing_is_written(
    configured, operator, case
):
    edit, field = CASES[case]
    before = text_of(configured)
    document = exported(configured)
    edit(document)

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator, force=True)

    assert raised.value.status == 422, raised.value.message
    assert field in {error["field"] for error in raised.value.errors}
    assert text_of(configured) == before


@pytest.mark.parametrize(
    "text",
    [
        '{"format_version": 1, "settings": {"reward_unit": "a\\u0000b"}}',
        '{"format_version": 1, "settings": {"a\\u0000": 1}}',
        'format_version: 1\nsettings: {reward_unit: "a\\0b"}\n',
        '{"format_version": 1, "settings": {"reward_unit": "\\ud800"}}',
    ],
)
def test_text_postgresql_cannot_store_is_refused(text):
    with pytest.raises(ApplicationError) as raised:
        document_parse(text)

    assert raised.value.status == 400
    assert "NUL" in raised.value.message or "not valid Unicode" in raised.value.message


@pytest.mark.parametrize(
    "text",
    [
        '{"format_version": 1, "settings": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "settings: " + "[" * 100_000 + "]" * 100_000 + "\n",
        '{"format_version": 1, "settings": ' + "[" * 70 + "]" * 70 + "}",
    ],
)
def test_a_deeply_nested_document_is_an_error_not_a_crash(text):
    with pytest.raises(ApplicationError) as raised:
        document_parse(text)

    assert raised.value.status == 400
    assert "nested deeper than 64 levels" in raised.value.message
