"""Fixes from the second review of configuration as code: numbers read exactly, YAML 1.1's
number forms refused, inputs that raised instead of a clear error."""

import time
from decimal import Decimal

import pytest

from campaigns.models import Campaign
from config.errors import ApplicationError, ErrorCode
from rewards.configuration import state
from rewards.configuration.cli import document_read
from rewards.configuration.document import MAX_OBJECTS, document_dump, document_parse
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create

from .support import apply, campaign, exported, held, plan, text_of

BUDGET = "123456789012.345678"


def _put(text: str, value: str) -> str:
    """``text`` with the placeholder string VALUE written as ``value``, bare."""
    return text.replace("'VALUE'", value).replace('"VALUE"', value).replace("VALUE", value)


def _with_budget_number(configured, fmt: str) -> str:
    """The exported document in ``fmt`` with cashback's budget written as a bare number."""
    document = exported(configured)
    campaign(document, "welcome")["budget"] = "VALUE"
    return _put(document_dump(document, fmt), BUDGET)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_an_amount_written_as_a_number_keeps_every_digit(configured, operator, fmt):
    text = _with_budget_number(configured, fmt)
    assert f"budget: {BUDGET}" in text or f'"budget": {BUDGET}' in text
    parsed = document_parse(text)
    assert parsed.campaigns["welcome"]["budget"] == BUDGET
    apply(configured, parsed.as_dict(), operator)
    assert Campaign.objects.get(slug="welcome").budget == Decimal(BUDGET)


@pytest.mark.parametrize("value", ["010", "1:30", "0x10", "0o10", "1_000", "+5"])
def test_yaml_1_1_integer_forms_are_refused(configured, value):
    document = exported(configured)
    campaign(document, "welcome")["max_rewards"] = "VALUE"
    text = _put(document_dump(document), value)
    assert f"max_rewards: {value}\n" in text
    with pytest.raises(ApplicationError) as caught:
        document_parse(text)
    assert caught.value.status == 422
    assert caught.value.errors[0]["field"] == "campaigns[welcome].max_rewards"


def test_yaml_numbers_as_json_writes_them_are_read(configured):
    document = exported(configured)
    campaign(document, "welcome")["max_rewards"] = "VALUE"
    campaign(document, "welcome")["priority"] = "PRIORITY"
    text = _put(document_dump(document), "10").replace("PRIORITY", "-3")
    parsed = document_parse(text)
    assert parsed.campaigns["welcome"]["max_rewards"] == 10
    assert parsed.campaigns["welcome"]["priority"] == -3


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "1.0e999999999", '"\\ud800"'],
    ids=["integer over 4300 digits", "huge exponent", "lone surrogate"],
)
def test_what_cannot_be_read_is_a_malformed_document(configured, fmt, value):
    document = exported(configured)
    campaign(document, "welcome")["budget"] = "VALUE"
    text = _put(document_dump(document, fmt), value)
    before = text_of(configured)
    with pytest.raises(ApplicationError) as caught:
        document_parse(text)
    assert (caught.value.status, caught.value.code) == (400, "malformed_document")
    assert text_of(configured) == before


def test_a_time_beyond_the_calendar_in_utc_is_refused_at_its_field(configured):
    document = exported(configured)
    campaign(document, "cashback")["ends_at"] = "9999-12-31T23:59:59-01:00"
    with pytest.raises(ApplicationError) as caught:
        document_parse(document_dump(document, "json"))
    assert caught.value.status == 422
    assert caught.value.errors[0]["field"] == "campaigns[cashback].ends_at"


def _two_endpoints_at_one_url(partnership) -> None:
    for events in (["reward.issued"], ["reward.reversed"]):
        webhook_endpoint_create(
            endpoint=WebhookEndpoint(
                partnership=partnership,
                url="https://z.example.com/",
                event_types=events,
                modes=WebhookEndpoint.Modes.LIVE,
            )
        )


def _endpoints_at_z() -> dict:
    return dict(
        WebhookEndpoint.objects.filter(url="https://z.example.com/").values_list(
            "secret", "event_types"
        )
    )


def test_reordering_endpoints_with_one_url_and_modes_plans_nothing(configured, operator):
    _two_endpoints_at_one_url(configured)
    document = exported(configured)
    at_z = [w for w in document["webhooks"] if w["url"] == "https://z.example.com/"]
    rest = [w for w in document["webhooks"] if w["url"] != "https://z.example.com/"]
    document["webhooks"] = at_z[::-1] + rest
    before = _endpoints_at_z()
    assert plan(configured, document).changes == ()
    apply(configured, document, operator)
    assert _endpoints_at_z() == before


def test_endpoints_with_one_url_and_modes_change_only_what_the_document_changes(
    configured, operator
):
    _two_endpoints_at_one_url(configured)
    document = exported(configured)
    at_z = [w for w in document["webhooks"] if w["url"] == "https://z.example.com/"]
    reversed_one = next(w for w in at_z if w["events"] == ["reward.reversed"])
    reversed_one["active"] = False
    document["webhooks"] = document["webhooks"][::-1]
    issued = WebhookEndpoint.objects.get(
        url="https://z.example.com/", event_types=["reward.issued"]
    )
    result = plan(configured, document)
    assert [(c.key, c.fields) for c in result.changes] == [
        ("https://z.example.com/ (live)", {"active": [True, False]})
    ]
    apply(configured, document, operator)
    issued.refresh_from_db()
    assert issued.active is True
    assert not WebhookEndpoint.objects.get(
        event_types=["reward.reversed"], url__contains="z."
    ).active


def test_a_plans_fingerprint_does_not_apply_another_document(configured, operator):
    reviewed = exported(configured)
    campaign(reviewed, "welcome")["name"] = "Reviewed"
    fingerprint = plan(configured, reviewed).fingerprint
    edited = exported(configured)
    campaign(edited, "welcome")["name"] = "Edited after the review"
    before = text_of(configured)

    with pytest.raises(ApplicationError) as raised:
        apply(configured, edited, operator, expect=fingerprint)

    assert (raised.value.status, raised.value.code) == (412, ErrorCode.CONFIGURATION_CHANGED)
    assert text_of(configured) == before
    apply(configured, reviewed, operator, expect=fingerprint)
    assert Campaign.objects.get(slug="welcome").name == "Reviewed"


def test_a_document_with_too_many_objects_is_refused(configured):
    document = exported(configured)
    document["triggers"] += [{"name": f"t{i}"} for i in range(MAX_OBJECTS["triggers"])]
    with pytest.raises(ApplicationError) as raised:
        document_parse(document_dump(document, "json"))
    assert raised.value.status == 422
    assert [e["field"] for e in raised.value.errors] == ["triggers"]


def test_the_commands_read_no_more_than_a_document_can_hold():
    with pytest.raises(ApplicationError) as raised:
        document_read("/dev/zero")  # endless: read whole, it would never end
    assert (raised.value.status, raised.value.code) == (400, "malformed_document")


@pytest.mark.django_db(transaction=True)
def test_a_plan_that_cannot_get_its_locks_gives_up_with_a_clear_error(
    configured, operator, monkeypatch
):
    monkeypatch.setattr(state, "LOCK_TIMEOUT", "200ms")
    editing = lambda: Campaign.objects.select_for_update().get(slug="welcome")  # noqa: E731
    with held(editing):  # a Pilot edit of a campaign, in flight
        started = time.monotonic()
        with pytest.raises(ApplicationError) as raised:
            apply(configured, exported(configured), operator, force=True)
        assert time.monotonic() - started < 5
    assert (raised.value.status, raised.value.code) == (503, ErrorCode.SERVICE_UNAVAILABLE)
    assert "Try again" in raised.value.message
