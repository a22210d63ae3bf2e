import json

import pytest

from config.errors import ApplicationError, ErrorCode
from rewards.configuration.document import (
    _CAMPAIGN,
    CAMPAIGN_FIELDS,
    document_dump,
    document_parse,
)

from .support import campaign, exported


def _problems(text) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        document_parse(text)
    return raised.value


def _fields(document: dict) -> dict[str, str]:
    error = _problems(document_dump(document))
    assert (error.status, error.code) == (422, ErrorCode.VALIDATION_ERROR)
    return {e["field"]: e["code"] for e in error.errors}


def test_the_schema_has_every_field_a_campaign_version_keeps():
    assert set(_CAMPAIGN) == set(CAMPAIGN_FIELDS)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("format_version: 1\ntriggers: [\n", "line 3, column 1"),
        ("a: 1\n\tb: 2\n", "line 2"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("a: &x [1]\nb: *x\n", "anchors and aliases are not supported"),
        ("? [1]\n: 2\n", "keys must be strings"),
        ("a: !!binary aGVsbG8=\n", "bytes is not a JSON value"),
        ("a: .nan\n", "not a finite number"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": }', "Not valid JSON: line 1, column 7"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_text_that_is_not_a_document_is_a_clear_error(text, where):
    error = _problems(text)

    assert (error.status, error.code) == (400, ErrorCode.MALFORMED_DOCUMENT)
    assert where in error.message


@pytest.mark.parametrize("text", ["", "just text", "[1, 2]", "42"])
def test_a_document_that_is_not_an_object_is_a_validation_error(text):
    error = _problems(text)

    assert (error.status, error.code) == (422, ErrorCode.VALIDATION_ERROR)


def test_wrong_types_and_unknown_keys_are_named_at_their_object_and_field(configured):
    document = exported(configured)
    campaign(document, "cashback")["budget"] = [1]
    campaign(document, "cashback")["exclusive"] = "yes please"
    campaign(document, "cashback")["colour"] = "red"
    campaign(document, "welcome")["facts"] = "purchases"
    document["triggers"][0]["context_schema"] = "object"
    document["webhooks"][0]["events"] = ["reward.paid"]
    document["settings"]["time_zone"] = 3
    document["extra"] = True

    assert _fields(document) == {
        "campaigns[cashback].budget": "type",
        "campaigns[cashback].exclusive": "type",
        "campaigns[cashback].colour": "unknown_field",
        "campaigns[welcome].facts": "type",
        "triggers[signup].context_schema": "type",
        "webhooks[https://hooks.example.com/rewards (live)].events[0]": "enum",
        "settings.time_zone": "type",
        "extra": "unknown_field",
    }


def test_every_section_and_a_webhooks_modes_are_required(configured):
    document = exported(configured)
    del document["webhooks"]
    del document["triggers"][0]["name"]
    del document["campaigns"][0]["trigger"]

    assert _fields(document) == {
        "webhooks": "required",
        "triggers[0].name": "required",
        "campaigns[cashback].trigger": "required",
    }
    document = exported(configured)
    del document["webhooks"][1]["modes"]
    assert _fields(document) == {"webhooks[1].modes": "required"}


def test_malformed_facts_are_errors_at_the_facts(configured):
    document = exported(configured)
    campaign(document, "cashback")["facts"] = [{"name": 1, "window_days": "30"}, "sum"]

    assert _fields(document) == {"campaigns[cashback].facts[1]": "type"}


def test_duplicates_and_references_to_triggers_left_out(configured):
    document = exported(configured)
    document["campaigns"].append(campaign(exported(configured), "welcome"))
    campaign(document, "cashback")["trigger"] = "purchase"
    campaign(document, "cashback")["facts"][0]["trigger"] = "login"

    assert _fields(document) == {
        "campaigns[welcome].slug": "duplicate",
        "campaigns[cashback].trigger": "unknown_trigger",
        "campaigns[cashback].facts[0].trigger": "unknown_trigger",
    }


def test_a_wrong_format_version_is_refused(configured):
    document = exported(configured)
    document["format_version"] = 2

    assert _fields(document) == {"format_version": "const"}


def test_yaml_and_json_and_numbers_or_strings_read_the_same(configured):
    document = exported(configured)
    as_json = document_parse(json.dumps(document))
    campaign(document, "cashback")["budget"] = 1000.0
    campaign(document, "cashback")["reward_max"] = "10.500"
    campaign(document, "cashback")["starts_at"] = "2026-01-01T01:00:00+01:00"

    assert document_parse(document_dump(document)) == as_json
