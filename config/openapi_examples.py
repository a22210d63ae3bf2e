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

# --- User tokens (issue 12) ------------------------------------------------------------------
TOKEN_ID = "4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a"  # noqa: S105 - an id, not a secret
_USER_TOKEN = {
    "token_id": TOKEN_ID,
    "external_user_id": USER,
    "mode": "live",
    "scopes": ["rewards:read"],
    "expires_at": AT,
    "revoked_at": None,
}

USER_TOKEN_CREATE = [
    _request(
        "read_only",
        "A token that reads the user's rewards and balance for an hour",
        {"scopes": ["rewards:read"], "lifetime_minutes": 60},
        'Add "trigger:<name>" scopes for triggers marked client-sendable in Pilot.',
    ),
    _ok(
        "read_only",
        "The token, shown once",
        {
            **_USER_TOKEN,
            "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJqdGkiOiI0ZDNjIn0.c2lnbmF0dXJl",
        },
    ),
]

USER_TOKEN_REVOKE = [
    _ok("revoked", "Revoked: refused from the next request", {**_USER_TOKEN, "revoked_at": AT})
]

USER_TOKEN_REVOKE_ALL = [_ok("revoked", "How many live tokens were revoked", {"revoked": 2})]

# --- Reports ----------------------------------------------------------------------------------
# Query examples: OpenAPI has them per parameter, so an example is the parameters carrying one
# of its name (config.openapi.add_query_examples); it answers as the response example of the
# same name (tests/config/test_openapi_examples.py sends each).

_JUNE = {"from": "2025-06-01", "to": "2025-06-30"}
_TWO_DAYS = {"from": "2025-06-01", "to": "2025-06-02"}

QUERY_EXAMPLES = {
    "report_rewards": {
        "by_day": ("Two days, by day", _TWO_DAYS),
        "by_campaign": ("June, by campaign", {**_JUNE, "group_by": "campaign"}),
        "csv": ("Two days, by day, as CSV", {**_TWO_DAYS, "format": "csv"}),
        "campaign_does_not_exist": (
            "An unknown campaign: 404",
            {**_JUNE, "campaign": "no-such-campaign"},
        ),
        "range_too_long": ("More than 366 days: 422", {"from": "2024-01-01", "to": "2025-06-30"}),
    },
    "report_liability": {
        "end_of_june": ("As of the end of June (UTC)", {"at": "2025-07-01T00:00:00Z"}),
    },
    "report_rewards_export": {
        "june": ("June's rewards", _JUNE),
        "cashback": ("June's rewards of one campaign", {**_JUNE, "campaign": "cashback-5"}),
    },
    "report_reversals_export": {"june": ("June's reversals", _JUNE)},
}


def _csv(name: str, summary: str, text: str) -> OpenApiExample:
    return OpenApiExample(
        name,
        value=text,
        summary=summary,
        response_only=True,
        status_codes=["200"],
        media_type="text/csv",
    )


_MONEY = {
    "unit": "Points",
    "issued_count": 2,
    "issued_amount": "4.26",
    "reversed_count": 1,
    "reversed_amount": "1.00",
    "net_amount": "3.26",
}
_NO_MONEY = {**_MONEY, **dict.fromkeys(["issued_count", "reversed_count"], 0)}
_NO_MONEY |= dict.fromkeys(["issued_amount", "reversed_amount", "net_amount"], "0.00")
_EVENTS = {
    "events_received": 3,
    "events_evaluated": 3,
    "events_rewarded": 2,
    "events_failed": 0,
    "conversion": "0.6667",
}
_NO_EVENTS = {**dict.fromkeys(_EVENTS, 0), "conversion": None}
_DECISIONS = {"rewarded": 2, "condition_false": 1}
_REPORT = {
    "mode": "live",
    **_TWO_DAYS,
    "time_zone": "UTC",
    "group_by": "day",
    "campaign": None,
    "trigger": None,
    "received_through": AT,
    "totals": {"money": [_MONEY], "events": _EVENTS, "unique_users": None, "decisions": _DECISIONS},
    "days": [
        {"day": "2025-06-01", "money": [_MONEY], "events": _EVENTS},
        {"day": "2025-06-02", "money": [_NO_MONEY], "events": _NO_EVENTS},
    ],
    "campaigns": None,
}

REPORT_REWARDS = [
    _ok("by_day", "Totals and one row per local day", _REPORT),
    _ok(
        "by_campaign",
        "Totals and one row per campaign",
        {
            **_REPORT,
            **_JUNE,
            "group_by": "campaign",
            "days": None,
            "campaigns": [
                {
                    "campaign_id": CAMPAIGN_ID,
                    "campaign": "cashback-5",
                    "name": "5% cashback up to 10 on purchases of 20 or more",
                    "money": [_MONEY],
                    "decisions": _DECISIONS,
                }
            ],
        },
    ),
    _csv(
        "csv",
        "The days as CSV",
        "day,unit,issued_count,issued_amount,reversed_count,reversed_amount,net_amount,"
        "events_received,events_evaluated,events_rewarded,events_failed,conversion\r\n"
        "2025-06-01,Points,2,4.26,1,1.00,3.26,3,3,2,0,0.6667\r\n"
        "2025-06-02,Points,0,0.00,0,0.00,0.00,0,0,0,0,\r\n",
    ),
]

REPORT_LIABILITY = [
    _ok(
        "end_of_june",
        "Outstanding per unit at that moment",
        {
            "mode": "live",
            "at": "2025-07-01T00:00:00Z",
            "liability": [{"unit": "Points", "outstanding": "3.26"}],
        },
    )
]

_REWARD_ROW = (
    "reward_id,issued_at,local_day,campaign_id,campaign,trigger,trigger_event_id,user_uuid,"
    "external_user_id,amount,reversed_amount,unit,status,mode,occurred_at,campaign_version\r\n"
    f"{REWARD_ID},2025-06-01T12:00:01.250000Z,2025-06-01,{CAMPAIGN_ID},cashback-5,{TRIGGER},"
    f"{EVENT_ID},{USER_UUID},{USER},2.13,1.00,Points,issued,live,2025-06-01T12:00:00.000000Z,1\r\n"
)
REPORT_REWARDS_EXPORT = [
    _csv("june", "One row per reward", _REWARD_ROW),
    _csv("cashback", "One row per reward of the campaign", _REWARD_ROW),
]
REPORT_REVERSALS_EXPORT = [
    _csv(
        "june",
        "One row per reversal of a reward (a partial one too)",
        "adjustment_id,created_at,local_day,reversal_id,reward_id,trigger_event_id,campaign_id,"
        "campaign,trigger,user_uuid,external_user_id,amount,unit,mode,reason,reward_amount,"
        "reward_issued_at\r\n"
        f"1,2025-06-02T09:30:00.000000Z,2025-06-02,{REVERSAL_ID},{REWARD_ID},{EVENT_ID},"
        f"{CAMPAIGN_ID},cashback-5,{TRIGGER},{USER_UUID},{USER},1.00,Points,live,"
        "Partial refund of order 8812,2.13,2025-06-01T12:00:01.250000Z\r\n",
    )
]


# --- End users: attributes and erasure (issue 12) ---------------------------------------------

_ATTRIBUTES = {"tier": "gold", "age": 34, "country": "FR"}
_USER = {
    "user_uuid": USER_UUID,
    "external_user_id": USER,
    "attributes": _ATTRIBUTES,
    "created_at": AT,
    "blocked": False,
}
_TOTALS = [
    {"unit": "Points", "rewards_count": 3, "amount": "4.26", "reversed": "1.00", "balance": "3.26"}
]

USER_RETRIEVE = [
    _ok(
        "user",
        "Attributes, and the totals of the key's mode",
        {**_USER, "mode": "live", "totals": _TOTALS},
    )
]

USER_REPLACE = [
    _request("replace", "Replace every attribute", {"attributes": _ATTRIBUTES}),
    OpenApiExample(
        "created",
        value={"code": "ok", "data": _USER},
        summary="An unknown user is created (201)",
        response_only=True,
        status_codes=["201"],
    ),
    _ok("replace", "A known user's attributes replaced", _USER),
]

USER_UPDATE = [
    _request(
        "merge",
        "Change one attribute, remove another (null)",
        {"attributes": {"tier": "platinum", "country": None}},
    ),
    _ok(
        "merge",
        "The attributes after the merge",
        {**_USER, "attributes": {"tier": "platinum", "age": 34}},
    ),
]

USER_ERASE = [
    _ok(
        "erased",
        "Erased: the external id no longer reaches the user",
        {"user_uuid": USER_UUID, "erased_at": AT},
    )
]
