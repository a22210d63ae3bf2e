"""How far ahead an event may be delivered, how late it may arrive, and what a timestamp is."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.conf import settings
from django.utils import timezone

from config.errors import ErrorCode
from partnerships.models import EndUser
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

MAX_DAYS = settings.EVENT_MAX_DELAY_DAYS


def send(client, trigger, **fields):
    body = {
        "trigger_name": trigger.name,
        "external_user_id": "u",
        "transaction_context": {"amount": 1, "currency": "USD"},
        **fields,
    }
    return client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        orjson.dumps(body),
        content_type="application/json",
    )


def refused(response, code=ErrorCode.VALIDATION_ERROR) -> dict[str, dict]:
    assert response.status_code == 422, response.content
    assert response.json()["code"] == code
    assert not TriggerEvent.objects.exists() and not EndUser.objects.exists()
    return {error["field"]: error for error in response.json()["errors"]}


def ago(**delta) -> str:
    return (timezone.now() - timedelta(**delta)).isoformat()


# --- delay and deliver_at --------------------------------------------------------------------


@pytest.mark.parametrize("days", [MAX_DAYS + 1, 3_000_000, 10**18])
def test_a_delay_past_the_bound_is_a_422_not_an_overflow(partner_client, trigger, days):
    errors = refused(send(partner_client, trigger, delay={"days": days}))

    assert errors["delay.days"]["code"] == "too_late"
    assert f"at most {MAX_DAYS} days" in errors["delay.days"]["message"]


@pytest.mark.parametrize(
    ("unit", "most"),
    [
        ("seconds", MAX_DAYS * 86400),
        ("minutes", MAX_DAYS * 1440),
        ("hours", MAX_DAYS * 24),
        ("days", MAX_DAYS),
    ],
)
def test_each_delay_unit_goes_up_to_the_bound_and_no_further(partner_client, trigger, unit, most):
    assert refused(send(partner_client, trigger, delay={unit: most + 1}))[f"delay.{unit}"]

    response = send(partner_client, trigger, delay={unit: most})
    assert response.status_code == 200, response.content
    event = TriggerEvent.objects.get()
    assert event.deliver_at - event.received_at == timedelta(days=MAX_DAYS)


def test_deliver_at_past_the_bound_is_refused(partner_client, trigger):
    errors = refused(send(partner_client, trigger, deliver_at="9999-12-31T23:59:59Z"))

    assert errors["deliver_at"]["code"] == "too_late"


# --- occurred_at lateness --------------------------------------------------------------------


def test_an_event_older_than_the_partnerships_bound_is_event_too_late(
    partner_client, trigger, partnership
):
    partnership.max_event_lateness_days = 7
    partnership.save()

    errors = refused(
        send(partner_client, trigger, occurred_at=ago(days=7, minutes=1)),
        code=ErrorCode.EVENT_TOO_LATE,
    )

    assert errors["occurred_at"]["code"] == ErrorCode.EVENT_TOO_LATE
    assert "7 days" in errors["occurred_at"]["message"]


def test_an_event_within_the_bound_is_accepted(partner_client, trigger, partnership):
    partnership.max_event_lateness_days = 7
    partnership.save()

    response = send(partner_client, trigger, occurred_at=ago(days=6, hours=23))

    assert response.status_code == 200, response.content


def test_new_partnerships_accept_30_days_of_lateness(partner_client, trigger, partnership):
    assert partnership.max_event_lateness_days == 30

    refused(send(partner_client, trigger, occurred_at=ago(days=31)), ErrorCode.EVENT_TOO_LATE)
    assert send(partner_client, trigger, occurred_at=ago(days=29)).status_code == 200


def test_without_a_bound_any_lateness_is_accepted(partner_client, trigger, partnership):
    partnership.max_event_lateness_days = None
    partnership.save()

    response = send(partner_client, trigger, occurred_at="1000-01-01T00:00:00+23:59")

    assert response.status_code == 200, response.content
    assert TriggerEvent.objects.get().occurred_at == datetime(999, 12, 31, 0, 1, tzinfo=UTC)


# --- What a timestamp is ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-11-30t10:00:00z", "2026-11-30T10:00:00z", "2026-11-30t11:00:00+01:00"],
)
def test_lowercase_t_and_z_are_accepted(partner_client, trigger, partnership, occurred_at):
    partnership.max_event_lateness_days = None
    partnership.save()

    response = send(partner_client, trigger, occurred_at=occurred_at)

    assert response.status_code == 200, response.content
    assert TriggerEvent.objects.get().occurred_at == datetime(2026, 11, 30, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2016-12-31T23:59:60Z",  # a leap second
        "2026-11-30T23:59:60z",
        "2026-11-30T10:00:00",  # no offset
        "2026-11-30 10:00:00Z",
        "2026-02-30T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "2026-11-30T10:00:00+24:00",
        "2026-11-30T10:00:00Z\n",
        "yesterday",
    ],
)
@pytest.mark.parametrize("field", ["occurred_at", "deliver_at"])
def test_a_timestamp_the_parser_cannot_take_is_a_clear_422(partner_client, trigger, field, value):
    errors = refused(send(partner_client, trigger, **{field: value}))

    assert errors == {
        field: {
            "field": field,
            "code": "format",
            "message": errors[field]["message"],
        }
    }
    assert "RFC 3339" in errors[field]["message"]
