"""Inputs meant to break things get a clear 4xx and store nothing: never a 500."""

import orjson
import pytest

from config.errors import ErrorCode
from partnerships.models import EndUser
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

CONTEXT = {"amount": 1, "currency": "USD"}


def body(**fields) -> bytes:
    return orjson.dumps(
        {
            "trigger_name": "transaction_completed",
            "external_user_id": "u",
            "transaction_context": CONTEXT,
            **fields,
        }
    )


def send(client, trigger, raw: bytes, **extra):
    return client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        raw,
        content_type="application/json",
        **extra,
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (body(external_user_id="a\x00b"), "external_user_id"),
        (body(transaction_context={**CONTEXT, "note": "x\x00y"}), "transaction_context.note"),
        (body(tags={"k": "v\x00"}), "tags.k"),
        (body(transaction_context={**CONTEXT, "a\x00": 1}), "transaction_context.a\x00"),
        (body(trigger_name="t\x00"), "trigger_name"),
    ],
)
def test_nul_characters_are_refused_by_field(partner_client, trigger, raw, field):
    response = send(partner_client, trigger, raw)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": field, "code": "nul_character", "message": "Text cannot contain NUL (\\u0000)"}
    ]
    assert not TriggerEvent.objects.exists() and not EndUser.objects.exists()


def test_a_literal_backslash_u0000_text_is_fine(partner_client, trigger):
    response = send(partner_client, trigger, body(external_user_id="\\u0000"))

    assert response.status_code == 200
    assert EndUser.objects.get().external_user_id == "\\u0000"


def test_nul_in_the_idempotency_header_is_refused(partner_client, trigger):
    response = send(partner_client, trigger, body(), HTTP_IDEMPOTENCY_KEY="k\x00")

    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "nul_character"


@pytest.mark.parametrize(
    "raw",
    [
        b"null",
        b"123",
        b'"s"',
        b"{" * 600 + b"}" * 600,
        b"\xff\xfe garbage",
    ],
)
def test_odd_json_is_a_4xx(partner_client, trigger, raw):
    response = send(partner_client, trigger, raw)

    assert 400 <= response.status_code < 500
    assert response.json()["code"] in (ErrorCode.MALFORMED_JSON, ErrorCode.VALIDATION_ERROR)
    assert not TriggerEvent.objects.exists()


@pytest.mark.parametrize("path", ["users/a%00b/rewards", "users/a%00b/balance"])
def test_nul_in_a_path_is_a_422_not_a_500(partner_client, partnership, path):
    response = partner_client.get(f"/partnerships/{partnership.id}/{path}")

    assert response.status_code == 422
    assert response.json()["code"] == ErrorCode.VALIDATION_ERROR


def test_nul_in_a_reversal_is_a_422(partner_client, partnership):
    response = partner_client.post(
        f"/partnerships/{partnership.id}/triggers/reverse",
        {"trigger_name": "a\x00", "external_user_id": "b"},
        format="json",
    )

    assert response.status_code == 422
