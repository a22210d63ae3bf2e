"""Generated requests to ingest and reversal, through the production WSGI app (the fast path).

Whatever a client sends: never a 5xx, every answer in the envelope, and a refused request
stores nothing. Bodies are mostly near-valid, so that generated values reach the checks past
the body schema (times, delays, users, idempotency, amounts), not only the first refusal.
"""

import json
import string
import uuid
from datetime import datetime, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import openapi_examples as examples
from config import timestamps
from partnerships.models import EndUser
from rewards.models import Reversal, Reward, RewardAdjustment
from tests.factories import ApiKeyFactory, TriggerEventFactory, TriggerFactory
from tests.support import process_queued
from tests.wsgi import call
from triggers.models import Trigger, TriggerEvent
from triggers.schemas import compile_schema

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDED = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ANY_TRIGGER, ARCHIVED_TRIGGER = "any_event", "old_event"
OTHER_KEY = "other partnership's key"  # a marker, replaced by the real key
KEY = "the key"

# --- JSON and text ---------------------------------------------------------------------------

# Any code point: NUL, lone surrogates, RTL marks, emoji...
text = st.text(st.characters(exclude_categories=()), max_size=12)
latin1 = st.text(st.characters(max_codepoint=255), max_size=300)  # what WSGI headers carry
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def either(*likely: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(*likely) | values


def one_in(n: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([False] * (n - 1) + [True])  # shrinks towards False


def mostly(draw, right: st.SearchStrategy, wrong: st.SearchStrategy = values, odds: int = 9):
    """Right ``odds`` times in ``odds + 1``: most requests get past one check to the next."""
    return draw(right) if draw(st.sampled_from([True] * odds + [False])) else draw(wrong)


# Around now, mostly within bounds: some too late (30 days), a few in the future.
recent = st.integers(-35 * 86400, 3600).map(
    lambda seconds: (timezone.now() + timedelta(seconds=seconds)).isoformat()
)


# A timestamp, one part off: what a client's formatter or a hand-written body might send.
_MUTATIONS = {
    "none": lambda stamp: stamp,
    "lowercase t": lambda stamp: stamp.replace("T", "t"),
    "lowercase z": lambda stamp: stamp.replace("Z", "z"),
    "space": lambda stamp: stamp.replace("T", " "),
    "leap second": lambda stamp: stamp[:17] + "60" + stamp[19:],
    "61 seconds": lambda stamp: stamp[:17] + "61" + stamp[19:],
    "no offset": lambda stamp: stamp.removesuffix("Z"),
    "offset 24:00": lambda stamp: stamp.replace("Z", "+24:00"),
    "offset -00:00": lambda stamp: stamp.replace("Z", "-00:00"),
    "offset 0530": lambda stamp: stamp.replace("Z", "+0530"),
    "year 0": lambda stamp: "0000" + stamp[4:],
    "year 1, east": lambda stamp: "0001-01-01" + stamp[10:].replace("Z", "+14:00"),
    "year 999": lambda stamp: "0999" + stamp[4:],
    "year 9999": lambda stamp: "9999" + stamp[4:],
    "day 30 of February": lambda stamp: stamp[:5] + "02-30" + stamp[10:],
    "day 32": lambda stamp: stamp[:8] + "32" + stamp[10:],
    "month 13": lambda stamp: stamp[:5] + "13" + stamp[7:],
    "hour 24": lambda stamp: stamp[:11] + "24" + stamp[13:],
    "13 decimals": lambda stamp: stamp.replace("Z", ".1234567890123Z"),
    "empty decimals": lambda stamp: stamp.replace("Z", ".Z"),
    "comma decimals": lambda stamp: stamp.replace("Z", ",5Z"),
    "trailing newline": lambda stamp: stamp + "\n",
}
odd_timestamps = st.builds(
    lambda when, mutation: _MUTATIONS[mutation](f"{when:%Y-%m-%dT%H:%M:%S}Z"),
    st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1)),
    st.sampled_from(sorted(_MUTATIONS)),
)


DELAY_UNITS = {"seconds": 86400, "minutes": 1440, "hours": 24, "days": 1}
delays = st.sampled_from(sorted(DELAY_UNITS)).flatmap(
    lambda unit: st.fixed_dictionaries({unit: st.integers(1, 31 * DELAY_UNITS[unit])})
)
odd_delays = either(
    st.dictionaries(
        st.sampled_from([*DELAY_UNITS, "weeks"]),
        st.integers(10**6, 10**25)  # past any bound, past timedelta's
        | st.integers(-10, 0)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text,
        max_size=2,
    )
)
tags = st.dictionaries(
    st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True), st.text(max_size=200), max_size=16
)
odd_tags = either(st.dictionaries(text | st.just("a" * 65), text | values, max_size=18))
keys = st.sampled_from(["k-1", "k-2", "k-3"])
odd_keys = either(st.sampled_from(["", "x" * 256]), text)


@st.composite
def ingest_bodies(draw) -> dict:
    body = {
        "trigger_name": mostly(
            draw,
            st.sampled_from([ANY_TRIGGER, examples.TRIGGER]),
            st.sampled_from([ARCHIVED_TRIGGER, "nope", ""]) | values,
        )
    }
    who = draw(st.sampled_from(["external"] * 6 + ["uuid", "uuid", "both", "neither"]))
    if who in ("external", "both"):
        body["external_user_id"] = mostly(
            draw, st.sampled_from([examples.USER, "new"]) | st.text(min_size=1, max_size=9)
        )
    if who in ("uuid", "both"):
        body["user_uuid"] = mostly(
            draw, st.just(examples.USER_UUID), st.sampled_from([str(uuid.UUID(int=7)), "x"])
        )
    if not draw(one_in(4)):
        body["transaction_context"] = mostly(
            draw, st.just(examples.PURCHASE), st.dictionaries(text, values, max_size=3) | values
        )
    if draw(st.booleans()):
        body["occurred_at"] = mostly(draw, recent, odd_timestamps | values, odds=1)
    when = draw(st.sampled_from(["now"] * 5 + ["delay"] * 2 + ["deliver_at"] * 2 + ["both"]))
    if when in ("delay", "both"):
        body["delay"] = mostly(draw, delays, odd_delays, odds=1)
    if when in ("deliver_at", "both"):
        body["deliver_at"] = mostly(draw, recent, odd_timestamps | values, odds=1)
    if draw(st.booleans()):
        body["tags"] = mostly(draw, tags, odd_tags)
    if draw(one_in(4)):
        body["idempotency_key"] = mostly(draw, keys, odd_keys)
    if draw(one_in(20)):
        body["surprise"] = draw(values)
    return body


amounts = st.decimals(min_value="0.01", max_value="12", places=2).map(str)
odd_amounts = either(
    st.sampled_from(["0", "", "-1", "1e3", " 2", "0.0000001", "9" * 13, "1.000000"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


@st.composite
def reverse_bodies(draw) -> dict:
    body = {}
    target = draw(st.sampled_from(["event"] * 3 + ["user"] * 5 + ["both", "neither"]))
    if target in ("event", "both"):
        body["trigger_event_id"] = mostly(
            draw, st.sampled_from([examples.EVENT_ID, str(uuid.UUID(int=9))]), values | text
        )
    if target in ("user", "both"):
        body["trigger_name"] = mostly(draw, st.sampled_from([examples.TRIGGER, ANY_TRIGGER]))
        body["external_user_id"] = mostly(draw, st.sampled_from([examples.USER, "new", "x"]))
    if draw(st.booleans()):
        body["amount"] = mostly(draw, amounts, odd_amounts)
    if draw(st.booleans()):
        body["reason"] = mostly(draw, text, st.just("r" * 501) | values)
    if draw(st.booleans()):
        body["idempotency_key"] = mostly(draw, keys, odd_keys)
    if draw(one_in(20)):
        body["surprise"] = draw(values)
    return body


# --- The request around a body ---------------------------------------------------------------


def _encode(body, ascii_only: bool) -> bytes:
    # Escaped, a lone surrogate is valid JSON; raw, it is not UTF-8.
    return json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def raw_bodies(bodies: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(_encode, bodies, st.booleans()),
        st.binary(max_size=40),
        st.sampled_from([b"", b"{", b"[" * 5000, b'{"a": 1e400}', b"\xff\xfe{}"]),
    )


@st.composite
def requests(draw, suffix: str, bodies: st.SearchStrategy) -> dict:
    """Each layer is right nine times in ten, so most requests reach the body's checks."""

    def layer(right, wrong: st.SearchStrategy):
        return mostly(draw, st.just(right), wrong)

    headers = {
        "Content-Type": layer(
            "application/json",
            st.sampled_from(["application/json; charset=utf-8", "Application/JSON", None]) | latin1,
        ),
        "X-Api-Key": layer(KEY, st.sampled_from([OTHER_KEY, None, "", "pk_live_x.y"]) | latin1),
    }
    if draw(one_in(4)):
        headers["Idempotency-Key"] = mostly(draw, keys, latin1)
    return {
        "method": layer("POST", st.sampled_from(["GET", "PUT", "DELETE", "OPTIONS", "HEAD"])),
        "partnership_id": layer("real", st.sampled_from([str(uuid.UUID(int=1)), "nope", "é/x"])),
        "suffix": layer(suffix, st.sampled_from([f"{suffix}/", f"{suffix}/x"])),
        "body": mostly(draw, st.builds(_encode, bodies, st.booleans()), raw_bodies(values)),
        "headers": headers,
    }


@pytest.fixture
def world(example_world):
    partnership = example_world.partnership
    TriggerFactory(partnership=partnership, name=ANY_TRIGGER, context_schema={})
    TriggerFactory(partnership=partnership, name=ARCHIVED_TRIGGER, status=Trigger.Status.ARCHIVED)
    # More for reversals to take: rewarded purchases and queued events of the examples' user.
    user = EndUser.objects.get(partnership=partnership, external_user_id=examples.USER)
    for trigger in Trigger.objects.filter(partnership=partnership, status=Trigger.Status.ACTIVE):
        TriggerEventFactory.create_batch(
            5, trigger=trigger, end_user=user, context=examples.PURCHASE
        )
    process_queued()
    for trigger in Trigger.objects.filter(partnership=partnership, status=Trigger.Status.ACTIVE):
        TriggerEventFactory.create_batch(
            5, trigger=trigger, end_user=user, context=examples.PURCHASE
        )
    other = ApiKeyFactory(rate_limit_per_second=1_000_000)
    return example_world, other.plaintext


def stored() -> tuple:
    """What a refused request must leave as it was."""
    return (
        TriggerEvent.objects.count(),
        TriggerEvent.objects.filter(status=TriggerEvent.Status.CANCELLED).count(),
        EndUser.objects.count(),
        Reversal.objects.count(),
        RewardAdjustment.objects.count(),
        Reward.objects.aggregate(total=Sum("reversed_amount"))["total"],
    )


def send_and_check(world, request: dict) -> None:
    example_world, other_key = world
    method, partnership_id, suffix = request["method"], request["partnership_id"], request["suffix"]
    if partnership_id == "real":
        partnership_id = str(example_world.partnership.id)
    keys = {KEY: example_world.api_key, OTHER_KEY: other_key}
    headers = {
        name: keys.get(value, value)
        for name, value in request["headers"].items()
        if value is not None
    }
    before = stored()

    path = f"/partnerships/{partnership_id}{suffix}"
    answer = call(method, path, body=request["body"], headers=headers)

    assert answer.status < 500, answer.body
    if method == "HEAD":
        return
    envelope = answer.json()
    if answer.status >= 400:
        assert isinstance(envelope["code"], str) and envelope["code"], envelope
        assert isinstance(envelope["message"], str) and envelope["message"], envelope
        assert stored() == before, (answer.status, envelope)
    else:
        assert envelope["code"] == "ok", envelope


@BOUNDED
@given(request=requests("/triggers", ingest_bodies()))
def test_no_ingest_request_is_a_5xx_or_stores_a_refusal(world, request):
    send_and_check(world, request)


@st.composite
def timed_bodies(draw) -> dict:
    """A valid event but for its times: past the body schema, to the clock's checks."""
    body = {"trigger_name": ANY_TRIGGER, "external_user_id": examples.USER}
    for field in ("occurred_at", "deliver_at", "delay"):
        if draw(st.booleans()):
            body[field] = draw(
                (delays | odd_delays) if field == "delay" else (recent | odd_timestamps)
            )
    return body


@settings(BOUNDED, max_examples=300)
@given(body=timed_bodies())
def test_no_event_time_is_a_5xx_or_stores_a_refusal(world, body):
    headers = {"Content-Type": "application/json", "X-Api-Key": KEY}
    request = {"method": "POST", "partnership_id": "real", "suffix": "/triggers"}
    send_and_check(world, {**request, "body": _encode(body, True), "headers": headers})


@BOUNDED
@given(request=requests("/triggers/reverse", reverse_bodies()))
def test_no_reversal_request_is_a_5xx_or_stores_a_refusal(world, request):
    send_and_check(world, request)


_timestamp_schema = compile_schema(timestamps.SCHEMA)


def _decodable(value: str) -> bool:
    """What a parsed body can hold: no lone surrogate (orjson refuses them)."""
    return not any(0xD800 <= ord(char) <= 0xDFFF for char in value)


@settings(max_examples=2000, derandomize=True, database=None, deadline=None)
@given(
    value=st.one_of(
        recent, odd_timestamps, st.text(string.digits + "-:.+Tt Zz", max_size=35)
    ).filter(lambda value: isinstance(value, str) and _decodable(value))
)
def test_the_timestamp_parser_takes_exactly_what_the_schema_takes(value):
    assert _timestamp_schema.is_valid(value) == (timestamps.parse(value) is not None), value
