"""The field editor's conversion: rows -> JSON Schema -> rows, and the rows it refuses."""

import pytest

from campaigns.compiler import TriggerSchema
from campaigns.rules import RuleEnvironment
from tests.factories import TRANSACTION_SCHEMA
from triggers.pilot.examples import example_context
from triggers.schema_editor import (
    FieldRow,
    NotExpressible,
    RowsInvalid,
    rows_to_schema,
    schema_to_rows,
)
from triggers.schemas import compile_schema, schema_errors, validate_context_schema

EVERY_KIND = [
    FieldRow("amount", "number", required=True, description="Paid, in the currency", minimum="0"),
    FieldRow("items", "integer", minimum="1", maximum="100"),
    FieldRow(
        "currency", "string", required=True, min_length="3", max_length="3", pattern="^[A-Z]{3}$"
    ),
    FieldRow("first_purchase", "boolean"),
    FieldRow("paid_at", "timestamp", required=True),
    FieldRow("channel", "enum", values="web\napp\nstore"),
    FieldRow("rate", "number", minimum="0.5", maximum="2.5"),
    FieldRow("merchant", "object", required=True, description="Where"),
    FieldRow("merchant.id", "string", required=True),
    FieldRow("merchant.category", "enum", values="food\ntravel"),
]


def test_every_kind_of_row_writes_its_json_schema():
    schema = rows_to_schema(EVERY_KIND)

    assert schema == {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "description": "Paid, in the currency", "minimum": 0},
            "items": {"type": "integer", "minimum": 1, "maximum": 100},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3, "pattern": "^[A-Z]{3}$"},
            "first_purchase": {"type": "boolean"},
            "paid_at": {"type": "string", "format": "date-time"},
            "channel": {"type": "string", "enum": ["web", "app", "store"]},
            "rate": {"type": "number", "minimum": 0.5, "maximum": 2.5},
            "merchant": {
                "type": "object",
                "description": "Where",
                "properties": {
                    "id": {"type": "string"},
                    "category": {"type": "string", "enum": ["food", "travel"]},
                },
                "required": ["id"],
            },
        },
        "required": ["amount", "currency", "paid_at", "merchant"],
    }


def test_rows_to_schema_to_rows_is_the_identity():
    assert schema_to_rows(rows_to_schema(EVERY_KIND)) == EVERY_KIND


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        TRANSACTION_SCHEMA,
        {"type": "object", "properties": {"x": {"type": "number", "minimum": 1.5, "maximum": 1e9}}},
    ],
)
def test_a_schema_the_editor_can_express_comes_back_unchanged(schema):
    assert rows_to_schema(schema_to_rows(schema)) == schema


def test_the_written_schema_is_one_ingest_and_the_campaign_compiler_accept():
    schema = rows_to_schema(EVERY_KIND)

    validate_context_schema(schema)  # the model field's validator
    compile_schema(schema)  # ingest's
    environment = RuleEnvironment(TriggerSchema(1, "t", schema).context_schema, {})
    environment.compile('context.amount >= 20.0 && context.channel == "web"', returns=("bool",))
    environment.compile("context.items > 2 && context.first_purchase", returns=("bool",))


def test_the_example_payload_is_valid_against_the_schema_as_ingest_checks_it():
    schema = rows_to_schema(EVERY_KIND)

    example = example_context(schema)

    assert example.errors == []
    assert schema_errors(compile_schema(schema), example.context, "transaction_context") == []
    assert example.context["currency"] == "AAA"
    assert example.context["merchant"] == {"id": "example", "category": "food"}
    assert example.context["items"] == 1


def invalid(rows: list[FieldRow]) -> dict[int, dict[str, str]]:
    with pytest.raises(RowsInvalid) as raised:
        rows_to_schema(rows)
    return raised.value.errors


def test_duplicate_names_are_refused_at_the_second_row():
    errors = invalid([FieldRow("amount", "number"), FieldRow("amount", "string")])

    assert errors == {1: {"name": "Another field is named amount"}}


def test_a_regular_expression_the_validator_cannot_read_is_refused_at_the_pattern():
    errors = invalid([FieldRow("code", "string", pattern="([A-Z]")])

    assert list(errors[0]) == ["pattern"]
    assert errors[0]["pattern"].startswith("Not a valid regular expression")


def test_a_minimum_above_the_maximum_is_refused_at_the_maximum():
    errors = invalid(
        [
            FieldRow("amount", "number", minimum="10", maximum="5"),
            FieldRow("code", "string", min_length="4", max_length="2"),
        ]
    )

    assert errors == {
        0: {"maximum": "Must be at least the minimum (10)"},
        1: {"max_length": "Must be at least the min length (4)"},
    }


def test_an_enum_without_values_is_refused():
    errors = invalid([FieldRow("channel", "enum", values="  \n ")])

    assert errors == {0: {"values": "An enum needs at least one value (one a line)"}}


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (FieldRow("", "string"), "name", "A field needs a name"),
        (FieldRow("order-id", "string"), "name", "Letters, digits and _ only"),
        (FieldRow("1st", "string"), "name", "Letters, digits and _ only"),
        (FieldRow("x", "date"), "type", "One of: string, number"),
        (FieldRow("x", "number", minimum="ten"), "minimum", "A number, e.g. 10 or 2.5"),
        (FieldRow("x", "integer", maximum="2.5"), "maximum", "A whole number"),
        (FieldRow("x", "string", min_length="-1"), "min_length", "A whole number of characters"),
        (FieldRow("x", "boolean", pattern="^a$"), "pattern", "Only for a field of type string"),
        (FieldRow("x", "string", minimum="1"), "minimum", "Only for a field of type number"),
        (FieldRow("x", "enum", values="a\na"), "values", "Each value once"),
        (FieldRow("a.b", "string"), "name", "No object field named a above this row"),
    ],
)
def test_a_bad_row_is_refused_with_the_reason_at_its_field(row, field, message):
    errors = invalid([row])

    assert errors[0][field].startswith(message)


def test_only_one_level_of_nesting():
    errors = invalid([FieldRow("a", "object"), FieldRow("a.b", "object")])

    assert errors == {1: {"type": "Only one level of nesting (deeper: use raw JSON)"}}


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, "$schema"),
        ({"type": "object", "additionalProperties": False}, "additionalProperties"),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, "type 'array'"),
        ({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}, "email"),
        ({"type": "object", "properties": {"a": {"oneOf": []}}}, "type None"),
        ({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 2}}}, "multiple"),
        ({"type": "object", "properties": {"a": {"enum": [1, 2], "type": "string"}}}, "enum"),
        ({"type": "object", "properties": {"o-x": {"type": "string"}}}, "context.<name>"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "number", "minimum": 5, "maximum": 1}},
            },
            "Must be at least the minimum",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "object", "properties": {"b": {"type": "object"}}}},
            },
            "an object inside an object",
        ),
    ],
)
def test_a_schema_the_rows_cannot_express_is_refused_naming_what(schema, reason):
    with pytest.raises(NotExpressible, match=None) as raised:
        schema_to_rows(schema)

    assert reason in str(raised.value)
