"""The examples the OpenAPI schema serves: what Swagger's "Try it out" sends, as it sends it.

Request examples name the demo catalog's trigger (``transaction_completed``, 5% cashback on
purchases of 20 or more; ``manage.py demo_setup``) and carry no timestamps, so they stay
valid as time passes. Sent in order, with the workers running, each answers as documented:
a request example's answer is the response example of the same name;
tests/config/test_openapi_examples.py sends each one and expects that status.
"""

from drf_spectacular.utils import OpenApiExample

TRIGGER = "transaction_completed"
USER = "user-123"
USER_UUID = "0f8e7d6c-5b4a-4392-8a1b-0c9d8e7f6a5b"
EVENT_ID = "5b6f3c1e-8d2a-4f7b-9c3e-2a1d4e5f6a7b"
REWARD_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CAMPAIGN_ID = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"
REVERSAL_ID = "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098"
PURCHASE = {"amount": 42.5, "currency": "USD", "merchant_category": "5411"}
AT = "2025-06-01T12:00:00Z"

# Replays answer with the original answer and this header.
REPLAYED = "replayed"


def _request(name: str, summary: str, value: dict, description: str = "") -> OpenApiExample:
    return OpenApiExample(
        name, value=value, summary=summary, description=description, request_only=True
    )


def _ok(name: str, summary: str, data: dict, description: str = "") -> OpenApiExample:
    return OpenApiExample(
        name,
        value={"code": "ok", "data": data},
        summary=summary,
        description=description,
        response_only=True,
        status_codes=["200"],
    )


def _accepted(status: str) -> dict:
    return {"trigger_event_id": EVENT_ID, "status": status, "user_uuid": USER_UUID, "mode": "live"}


_EVENT = {"trigger_name": TRIGGER, "external_user_id": USER, "transaction_context": PURCHASE}

TRIGGER_EVENT_CREATE = [
    _request("purchase", "A purchase, evaluated now", {**_EVENT, "tags": {"channel": "pos"}}),
    _request(
        "delayed",
        "Evaluated in an hour (delay)",
        # Another user: a reversal by user takes the latest event, and this one is unevaluated.
        {**_EVENT, "external_user_id": "user-456", "delay": {"hours": 1}},
        "Or `deliver_at` with an RFC 3339 time; not both.",
    ),
    _request(
        "retry_safe",
        "Safe to retry (idempotency_key)",
        {**_EVENT, "idempotency_key": "order-8812-completed"},
        "Sending it again returns the same event with `Idempotent-Replayed: true`.",
    ),
    _ok("purchase", "Queued for evaluation", _accepted("queued")),
    _ok("delayed", "Scheduled", _accepted("scheduled")),
    _ok("retry_safe", "Queued for evaluation", _accepted("queued")),
    _ok(
        REPLAYED,
        "A replay: the original event",
        _accepted("queued"),
        "The same Idempotency-Key and body again: header `Idempotent-Replayed: true`, the "
        "original event's id and its current status.",
    ),
]

_ADJUSTMENT = {
    "reward_id": REWARD_ID,
    "campaign": "cashback-5",
    "amount": "1.00",
    "remaining": "1.13",
    "reward_status": "issued",
}
_REVERSAL = {
    "reversal_id": REVERSAL_ID,
    "trigger_event_id": EVENT_ID,
    "mode": "live",
    "cancelled_event": False,
    "reason": "Partial refund of order 8812",
    "requested_amount": "1.000000",
    "created_at": AT,
    "reversals": [_ADJUSTMENT],
}
_BY_USER = {"trigger_name": TRIGGER, "external_user_id": USER}

TRIGGER_EVENT_REVERSE = [
    _request(
        "partial_refund",
        "Claw back part of the user's latest purchase",
        {
            **_BY_USER,
            "amount": "1.00",
            "reason": "Partial refund of order 8812",
            "idempotency_key": "refund-8812-1",
        },
        "Or name the event: `trigger_event_id` instead of `trigger_name` and `external_user_id`.",
    ),
    _request(
        "refund",
        "Reverse all of the user's latest purchase",
        {**_BY_USER, "reason": "Order 8812 refunded"},
    ),
    _ok("partial_refund", "Part of the reward clawed back", _REVERSAL),
    _ok(
        "refund",
        "The rewards reversed",
        {
            **_REVERSAL,
            "reason": "Order 8812 refunded",
            "requested_amount": None,
            "reversals": [
                {**_ADJUSTMENT, "amount": "1.13", "remaining": "0.00", "reward_status": "reversed"}
            ],
        },
    ),
    _ok(
        REPLAYED,
        "A replay: the original reversal",
        _REVERSAL,
        "The same Idempotency-Key and body again: header `Idempotent-Replayed: true`.",
    ),
]

_REWARD = {
    "reward_id": REWARD_ID,
    "campaign_id": CAMPAIGN_ID,
    "campaign": "cashback-5",
    "campaign_version": 1,
    "trigger_event_id": EVENT_ID,
    "amount": "2.13",
    "reversed_amount": "0.00",
    "unit": "Points",
    "mode": "live",
    "status": "issued",
    "issued_at": AT,
    "occurred_at": AT,
}
_TRIGGER_EVENT = {
    "trigger_event_id": EVENT_ID,
    "trigger_name": TRIGGER,
    "user_uuid": USER_UUID,
    "external_user_id": USER,
    "transaction_context": PURCHASE,
    "status": "processed",
    "mode": "live",
    "tags": {"channel": "pos"},
    "idempotency_key": None,
    "occurred_at": AT,
    "received_at": AT,
    "deliver_at": AT,
    "processed_at": AT,
    "error": "",
}

TRIGGER_EVENT_RETRIEVE = [
    _ok(
        "rewarded",
        "Evaluated and rewarded",
        {
            **_TRIGGER_EVENT,
            "decisions": [
                {
                    "campaign_id": CAMPAIGN_ID,
                    "campaign": "cashback-5",
                    "outcome": "rewarded",
                    "amount": "2.13",
                    "message": "",
                }
            ],
            "rewards": [_REWARD],
            "reversals": [],
        },
    )
]

TRIGGER_EVENT_CANCEL = [
    _ok(
        "cancelled",
        "Cancelled before its delivery",
        {**_TRIGGER_EVENT, "status": "cancelled", "processed_at": None},
    )
]

USER_REWARD_LIST = [
    _ok("page", "A page of rewards", {"mode": "live", "rewards": [_REWARD], "next_cursor": None}),
]

USER_BALANCE = [
    _ok(
        "balance",
        "Earned, reversed and net per unit",
        {
            "user_uuid": USER_UUID,
            "external_user_id": USER,
            "mode": "live",
            "balances": [{"unit": "Points", "earned": "4.26", "reversed": "1.00", "net": "3.26"}],
        },
    )
]

PARTNERSHIP_RETRIEVE = [
    _ok(
        "partnership",
        "The key's partnership",
        {
            "partnership_id": "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8",
            "name": "Demo Bank rewards",
            "status": "active",
            "reward_unit": "Points",
            "mode": "live",
            "key_prefix": "pk_live_ab12cd34",
        },
    )
]
