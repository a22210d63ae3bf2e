import uuid
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from config.errors import ErrorCode
from partnerships.models import ApiKey, EndUser, Partnership
from tests.factories import ApiKeyFactory, EndUserFactory, TriggerFactory
from triggers.models import Trigger, TriggerEvent

pytestmark = pytest.mark.django_db

CONTEXT = {"amount": 42.5, "currency": "USD", "merchant_category": "5411"}


def send(client, partnership_id, body, **extra):
    return client.post(
        f"/partnerships/{partnership_id}/triggers",
        orjson.dumps(body),
        content_type="application/json",
        **extra,
    )


def event_body(**overrides) -> dict:
    return {
        "trigger_name": "transaction_completed",
        "external_user_id": "user-1",
        "transaction_context": dict(CONTEXT),
        **overrides,
    }


def assert_refused(response, status: int, code: ErrorCode) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"]
    assert TriggerEvent.objects.count() == 0
    return body


def fields(body: dict) -> dict:
    return {error["field"]: error["code"] for error in body["errors"]}


# --- Accepting an event --------------------------------------------------------------------


def test_event_is_stored_and_its_id_returned(partner_client, trigger):
    response = send(partner_client, trigger.partnership_id, event_body(tags={"channel": "pos"}))

    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "ok"
    event = TriggerEvent.objects.get(pk=body["data"]["trigger_event_id"])
    assert event.trigger == trigger
    assert event.context == CONTEXT
    assert event.status == "queued"
    assert event.mode == "live"
    assert event.tags == {"channel": "pos"}
    assert event.end_user.external_user_id == "user-1"
    assert body["data"]["user_uuid"] == str(event.end_user_id)
    assert "Idempotent-Replayed" not in response


def test_first_event_for_an_external_id_creates_the_user_once(partner_client, trigger):
    first = send(partner_client, trigger.partnership_id, event_body())
    second = send(partner_client, trigger.partnership_id, event_body())

    assert first.status_code == second.status_code == 200
    assert EndUser.objects.filter(partnership=trigger.partnership).count() == 1
    assert first.json()["data"]["user_uuid"] == second.json()["data"]["user_uuid"]
    assert TriggerEvent.objects.count() == 2


def test_known_user_uuid_is_accepted(partner_client, trigger):
    user = EndUserFactory(partnership=trigger.partnership)
    body = event_body(user_uuid=str(user.id))
    del body["external_user_id"]

    response = send(partner_client, trigger.partnership_id, body)

    assert response.status_code == 200
    assert TriggerEvent.objects.get().end_user == user


def test_both_user_ids_naming_the_same_user_are_accepted(partner_client, trigger):
    user = EndUserFactory(partnership=trigger.partnership, external_user_id="user-1")

    response = send(partner_client, trigger.partnership_id, event_body(user_uuid=str(user.id)))

    assert response.status_code == 200


def test_user_ids_naming_different_users_are_refused(partner_client, trigger):
    user = EndUserFactory(partnership=trigger.partnership, external_user_id="someone-else")

    response = send(partner_client, trigger.partnership_id, event_body(user_uuid=str(user.id)))

    body = assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert fields(body) == {"user_uuid": "mismatch"}


def test_unknown_user_uuid_is_404(partner_client, trigger):
    body = event_body(user_uuid=str(uuid.uuid4()))
    del body["external_user_id"]

    assert_refused(send(partner_client, trigger.partnership_id, body), 404, "user_does_not_exist")
    assert EndUser.objects.count() == 0


def test_user_uuid_of_another_partnership_is_404(partner_client, trigger):
    stranger = EndUserFactory()
    body = event_body(user_uuid=str(stranger.id))
    del body["external_user_id"]

    assert_refused(send(partner_client, trigger.partnership_id, body), 404, "user_does_not_exist")


def test_test_key_events_are_test_mode(api_client, trigger):
    test_key = ApiKeyFactory(partnership=trigger.partnership, mode=ApiKey.Mode.TEST)

    response = send(
        api_client, trigger.partnership_id, event_body(), HTTP_X_API_KEY=test_key.plaintext
    )

    assert response.status_code == 200
    assert TriggerEvent.objects.get().mode == "test"


def test_occurred_at_in_the_past_is_kept(partner_client, trigger):
    occurred = (timezone.now() - timedelta(days=2)).replace(microsecond=0).isoformat()

    response = send(partner_client, trigger.partnership_id, event_body(occurred_at=occurred))

    assert response.status_code == 200
    assert TriggerEvent.objects.get().occurred_at.isoformat() == occurred


def test_context_is_optional_when_the_schema_requires_nothing(partner_client, partnership):
    TriggerFactory(partnership=partnership, name="user_signup", context_schema={"type": "object"})

    response = send(
        partner_client, partnership.id, {"trigger_name": "user_signup", "external_user_id": "u"}
    )

    assert response.status_code == 200
    assert TriggerEvent.objects.get().context == {}


# --- Delayed delivery and cancel -----------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [({"seconds": 30}, 30), ({"minutes": 5}, 300), ({"hours": 2}, 7200), ({"days": 1}, 86400)],
)
def test_delay_schedules_the_event(partner_client, trigger, delay, seconds):
    response = send(partner_client, trigger.partnership_id, event_body(delay=delay))

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "scheduled"
    event = TriggerEvent.objects.get()
    assert event.status == "scheduled"
    assert event.deliver_at - event.received_at == timedelta(seconds=seconds)


def test_deliver_at_schedules_the_event(partner_client, trigger):
    when = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)

    response = send(partner_client, trigger.partnership_id, event_body(deliver_at=when.isoformat()))

    assert response.status_code == 200
    assert TriggerEvent.objects.get().deliver_at == when


def test_deliver_at_in_the_past_delivers_now(partner_client, trigger):
    response = send(
        partner_client, trigger.partnership_id, event_body(deliver_at="2020-01-01T00:00:00Z")
    )

    assert response.json()["data"]["status"] == "queued"


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"delay": {"seconds": 5}, "deliver_at": "2030-01-01T00:00:00Z"}, "deliver_at", "conflict"),
        ({"delay": {"days": 31}}, "delay.days", "too_late"),
        ({"delay": {"weeks": 1}}, "delay.weeks", "unknown_field"),
        ({"delay": {"seconds": 0}}, "delay.seconds", "minimum"),
        ({"delay": {"seconds": 1, "minutes": 1}}, "delay", "max_properties"),
        ({"deliver_at": "next tuesday"}, "deliver_at", "format"),
    ],
)
def test_bad_delays_are_refused(partner_client, trigger, extra, field, code):
    response = send(partner_client, trigger.partnership_id, event_body(**extra))

    body = assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert fields(body)[field] == code


# --- Validation ----------------------------------------------------------------------------


def test_context_schema_violations_are_listed_one_per_problem(partner_client, trigger):
    context = {"amount": "lots", "currency": "usd", "merchant_category": 5411}

    response = send(partner_client, trigger.partnership_id, event_body(transaction_context=context))

    body = assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert fields(body) == {
        "transaction_context.amount": "type",
        "transaction_context.currency": "pattern",
        "transaction_context.merchant_category": "type",
    }
    assert all(error["message"] for error in body["errors"])


def test_missing_required_context_field_is_named(partner_client, trigger):
    response = send(
        partner_client, trigger.partnership_id, event_body(transaction_context={"amount": 1})
    )

    body = assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert fields(body) == {"transaction_context.currency": "required"}


def test_nested_context_errors_have_dotted_paths(partner_client, partnership):
    TriggerFactory(
        partnership=partnership,
        name="basket",
        context_schema={
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
                }
            },
        },
    )
    body = {
        "trigger_name": "basket",
        "external_user_id": "u",
        "transaction_context": {"items": [{"sku": 1}]},
    }

    response = send(partner_client, partnership.id, body)

    assert fields(assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)) == {
        "transaction_context.items[0].sku": "type"
    }


def test_missing_user_ids_are_refused(partner_client, trigger):
    body = event_body()
    del body["external_user_id"]

    response = send(partner_client, trigger.partnership_id, body)

    assert fields(assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)) == {
        "external_user_id": "required"
    }


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"external_user_id": "u"}, "trigger_name", "required"),
        ({"trigger_name": 5, "external_user_id": "u"}, "trigger_name", "type"),
        ({"trigger_name": "t", "external_user_id": ""}, "external_user_id", "min_length"),
        ({"trigger_name": "t", "external_user_id": "x" * 256}, "external_user_id", "max_length"),
        ({"trigger_name": "t", "user_uuid": "nope"}, "user_uuid", "format"),
        (
            {"trigger_name": "t", "external_user_id": "u", "transaction_context": []},
            "transaction_context",
            "type",
        ),
        (
            {"trigger_name": "t", "external_user_id": "u", "surprise": 1},
            "surprise",
            "unknown_field",
        ),
        ({"trigger_name": "t", "external_user_id": "u", "tags": {"k": 1}}, "tags.k", "type"),
        (
            {"trigger_name": "t", "external_user_id": "u", "tags": {"bad key": "v"}},
            "tags",
            "property_names",
        ),
        (
            {"trigger_name": "t", "external_user_id": "u", "occurred_at": "yesterday"},
            "occurred_at",
            "format",
        ),
        (
            {"trigger_name": "t", "external_user_id": "u", "idempotency_key": ""},
            "idempotency_key",
            "min_length",
        ),
    ],
)
def test_malformed_fields_are_refused_per_field(partner_client, trigger, body, field, code):
    response = send(partner_client, trigger.partnership_id, body)

    assert fields(assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)).get(field) == code


def test_occurred_at_in_the_future_is_refused(partner_client, trigger):
    future = (timezone.now() + timedelta(hours=1)).isoformat()

    response = send(partner_client, trigger.partnership_id, event_body(occurred_at=future))

    assert fields(assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)) == {
        "occurred_at": "in_future"
    }


def test_occurred_at_within_clock_skew_is_accepted(partner_client, trigger):
    soon = (timezone.now() + timedelta(seconds=30)).isoformat()

    assert (
        send(partner_client, trigger.partnership_id, event_body(occurred_at=soon)).status_code
        == 200
    )


def test_body_that_is_not_an_object_is_refused(partner_client, trigger):
    response = send(partner_client, trigger.partnership_id, ["not", "an", "object"])

    assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)


def test_unknown_trigger_is_404(partner_client, trigger):
    response = send(partner_client, trigger.partnership_id, event_body(trigger_name="nope"))

    assert_refused(response, 404, ErrorCode.TRIGGER_DOES_NOT_EXIST)


def test_trigger_of_another_partnership_is_404(partner_client, partnership):
    TriggerFactory(name="elsewhere")

    response = send(partner_client, partnership.id, event_body(trigger_name="elsewhere"))

    assert_refused(response, 404, ErrorCode.TRIGGER_DOES_NOT_EXIST)


def test_archived_trigger_is_refused(partner_client, trigger):
    send(partner_client, trigger.partnership_id, event_body())  # warm the cache
    TriggerEvent.objects.all().delete()
    trigger.status = Trigger.Status.ARCHIVED
    trigger.save()

    response = send(partner_client, trigger.partnership_id, event_body())

    assert_refused(response, 422, ErrorCode.TRIGGER_INACTIVE)


def test_schema_change_applies_to_a_warm_cache(partner_client, trigger):
    assert send(partner_client, trigger.partnership_id, event_body()).status_code == 200
    TriggerEvent.objects.all().delete()
    trigger.context_schema = {**trigger.context_schema, "required": ["amount", "currency", "store"]}
    trigger.save()

    response = send(partner_client, trigger.partnership_id, event_body())

    assert fields(assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)) == {
        "transaction_context.store": "required"
    }


# --- Request shape and auth ----------------------------------------------------------------


def test_malformed_json_is_400(partner_client, trigger):
    response = partner_client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        b'{"trigger_name": ',
        content_type="application/json",
    )

    assert_refused(response, 400, ErrorCode.MALFORMED_JSON)


def test_wrong_content_type_is_415(partner_client, trigger):
    response = partner_client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        "trigger_name=x",
        content_type="text/plain",
    )

    assert_refused(response, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)


def test_oversized_body_is_413(partner_client, trigger, settings):
    big = event_body(transaction_context={**CONTEXT, "note": "x" * settings.API_MAX_BODY_BYTES})

    assert_refused(
        send(partner_client, trigger.partnership_id, big), 413, ErrorCode.PAYLOAD_TOO_LARGE
    )


def test_get_is_405(partner_client, trigger):
    response = partner_client.get(f"/partnerships/{trigger.partnership_id}/triggers")

    assert_refused(response, 405, ErrorCode.METHOD_NOT_ALLOWED)


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (None, 400, ErrorCode.INVALID_TOKEN),
        ("pk_live_abcdefgh.wrong", 400, ErrorCode.INVALID_TOKEN),
    ],
)
def test_bad_keys_are_refused(api_client, trigger, key, status, code):
    extra = {"HTTP_X_API_KEY": key} if key else {}

    assert_refused(send(api_client, trigger.partnership_id, event_body(), **extra), status, code)


def test_key_of_another_partnership_is_401(api_client, trigger):
    stranger = ApiKeyFactory()

    response = send(
        api_client, trigger.partnership_id, event_body(), HTTP_X_API_KEY=stranger.plaintext
    )

    assert_refused(response, 401, ErrorCode.UNAUTHORIZED_REQUEST)


def test_unknown_partnership_is_404(partner_client, trigger):
    assert_refused(
        send(partner_client, uuid.uuid4(), event_body()), 404, ErrorCode.PARTNERSHIP_DOES_NOT_EXIST
    )


def test_suspended_partnership_refuses_events(partner_client, trigger):
    Partnership.objects.filter(pk=trigger.partnership_id).update(status="suspended")

    response = send(partner_client, trigger.partnership_id, event_body())

    assert_refused(response, 403, ErrorCode.PARTNERSHIP_SUSPENDED)


def test_rate_limit_per_key_is_429_with_retry_after(api_client, trigger):
    key = ApiKeyFactory(partnership=trigger.partnership, rate_limit_per_second=3)
    responses = [
        send(api_client, trigger.partnership_id, event_body(), HTTP_X_API_KEY=key.plaintext)
        for _ in range(8)
    ]

    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert limited[0].json()["code"] == ErrorCode.RATE_LIMITED
    assert int(limited[0]["Retry-After"]) >= 1
    # At most one window boundary can fall inside the burst: 2 windows x 3 requests.
    assert TriggerEvent.objects.count() <= 6
    assert TriggerEvent.objects.count() == 8 - len(limited)


# --- Idempotency ---------------------------------------------------------------------------


def test_same_key_and_body_replays_the_original_event(partner_client, trigger):
    first = send(partner_client, trigger.partnership_id, event_body(), HTTP_IDEMPOTENCY_KEY="k-1")
    again = send(partner_client, trigger.partnership_id, event_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 200
    assert again.json()["data"]["trigger_event_id"] == first.json()["data"]["trigger_event_id"]
    assert again["Idempotent-Replayed"] == "true"
    assert TriggerEvent.objects.count() == 1


def test_idempotency_key_in_the_body_works_too(partner_client, trigger):
    body = event_body(idempotency_key="k-2")
    first = send(partner_client, trigger.partnership_id, body)
    again = send(partner_client, trigger.partnership_id, body)

    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["trigger_event_id"] == first.json()["data"]["trigger_event_id"]
    assert TriggerEvent.objects.get().idempotency_key == "k-2"


def test_same_key_with_a_different_body_is_409(partner_client, trigger):
    send(partner_client, trigger.partnership_id, event_body(), HTTP_IDEMPOTENCY_KEY="k-3")
    other = event_body(transaction_context={**CONTEXT, "amount": 99})

    response = send(partner_client, trigger.partnership_id, other, HTTP_IDEMPOTENCY_KEY="k-3")

    assert response.status_code == 409
    assert response.json()["code"] == ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert TriggerEvent.objects.count() == 1


def test_reused_key_for_a_new_user_creates_no_user(partner_client, trigger):
    send(partner_client, trigger.partnership_id, event_body(), HTTP_IDEMPOTENCY_KEY="k-4")

    response = send(
        partner_client,
        trigger.partnership_id,
        event_body(external_user_id="newcomer"),
        HTTP_IDEMPOTENCY_KEY="k-4",
    )

    assert response.status_code == 409
    assert not EndUser.objects.filter(external_user_id="newcomer").exists()


def test_header_and_body_keys_must_agree(partner_client, trigger):
    response = send(
        partner_client,
        trigger.partnership_id,
        event_body(idempotency_key="a"),
        HTTP_IDEMPOTENCY_KEY="b",
    )

    assert fields(assert_refused(response, 422, ErrorCode.VALIDATION_ERROR)) == {
        "idempotency_key": "mismatch"
    }


def test_idempotency_keys_are_scoped_to_the_partnership(api_client, partner_client, trigger):
    other_key = ApiKeyFactory()
    TriggerFactory(partnership=other_key.partnership)
    mine = send(partner_client, trigger.partnership_id, event_body(), HTTP_IDEMPOTENCY_KEY="same")

    theirs = send(
        api_client,
        other_key.partnership_id,
        event_body(),
        HTTP_X_API_KEY=other_key.plaintext,
        HTTP_IDEMPOTENCY_KEY="same",
    )

    assert mine.status_code == theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs
    assert TriggerEvent.objects.count() == 2
