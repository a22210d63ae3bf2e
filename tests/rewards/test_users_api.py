"""The partner API's users: attributes (PUT/PATCH) against the schema, GET with totals per
mode, and erasure by API, Pilot and command."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from config.errors import ErrorCode
from partnerships.models import AuditEntry, EndUser
from rewards.models import CampaignCounter, Reward
from tests.factories import CampaignFactory, EndUserFactory
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "properties": {
        "tier": {"type": "string", "enum": ["silver", "gold"]},
        "age": {"type": "integer", "minimum": 0},
    },
    "required": ["tier"],
}


def url(partnership, external_id="alice"):
    return f"/partnerships/{partnership.id}/users/{external_id}"


def send(client, partnership, external_id="alice", key=None, amount=25):
    body = {
        "trigger_name": "transaction_completed",
        "external_user_id": external_id,
        "transaction_context": {"amount": amount, "currency": "USD"},
    }
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/partnerships/{partnership.id}/triggers", body, format="json", **headers)


@pytest.fixture
def with_schema(partnership):
    partnership.user_attribute_schema = SCHEMA
    partnership.save()
    return partnership


# --- attributes ---------------------------------------------------------------------------


def test_put_creates_an_unknown_user_with_201_then_replaces_with_200(partner_client, partnership):
    created = partner_client.put(url(partnership), {"attributes": {"tier": "gold"}}, format="json")
    replaced = partner_client.put(url(partnership), {"attributes": {"age": 3}}, format="json")

    assert created.status_code == 201, created.content
    assert replaced.status_code == 200
    assert replaced.json()["data"]["attributes"] == {"age": 3}
    user = EndUser.objects.get(partnership=partnership, external_user_id="alice")
    assert user.attributes == {"age": 3}


def test_patch_merges_and_null_removes_a_key(partner_client, partnership):
    EndUserFactory(partnership=partnership, external_user_id="alice", attributes={"a": 1, "b": 2})

    response = partner_client.patch(
        url(partnership), {"attributes": {"b": None, "c": "x"}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["data"]["attributes"] == {"a": 1, "c": "x"}


def test_attributes_are_checked_against_the_schema_with_per_field_errors(
    partner_client, with_schema
):
    response = partner_client.put(
        url(with_schema), {"attributes": {"tier": "bronze", "age": -1}}, format="json"
    )

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == ErrorCode.VALIDATION_ERROR
    fields = {(error["field"], error["code"]) for error in body["errors"]}
    assert fields == {("attributes.tier", "enum"), ("attributes.age", "minimum")}
    assert not EndUser.objects.filter(external_user_id="alice").exists()


def test_a_patch_is_checked_as_merged(partner_client, with_schema):
    EndUserFactory(partnership=with_schema, external_user_id="alice", attributes={"tier": "gold"})

    removed = partner_client.patch(url(with_schema), {"attributes": {"tier": None}}, format="json")
    kept = partner_client.patch(url(with_schema), {"attributes": {"age": 30}}, format="json")

    assert removed.status_code == 422
    assert removed.json()["errors"][0]["field"] == "attributes.tier"
    assert kept.status_code == 200
    assert kept.json()["data"]["attributes"] == {"tier": "gold", "age": 30}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_attributes_nested_too_deep_are_422_at_the_field(partner_client, partnership, method):
    deep = "[" * 1000 + "]" * 1000
    raw = '{"attributes": {"x": ' + deep + "}}"

    response = getattr(partner_client, method)(
        url(partnership), data=raw, content_type="application/json"
    )

    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("attributes", "max_depth")]
    assert not EndUser.objects.exists()


def test_attributes_nested_32_levels_are_stored(partner_client, partnership):
    raw = '{"attributes": {"x": ' + "[" * 31 + "]" * 31 + "}}"  # the object is level 1

    response = partner_client.put(url(partnership), data=raw, content_type="application/json")

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("delete", ""), ("get", "/balance"), ("get", "/rewards"), ("delete", "/tokens")],
)
def test_a_nul_in_the_external_id_of_a_path_is_422_not_500(
    partner_client, partnership, method, suffix
):
    response = getattr(partner_client, method)(url(partnership, "%00") + suffix)

    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == "external_user_id"


def test_a_body_without_attributes_is_refused(partner_client, partnership):
    response = partner_client.put(url(partnership), {"tier": "gold"}, format="json")

    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"tier", "attributes"}


def test_a_test_key_cannot_write_attributes_or_erase(test_client, partnership):
    EndUserFactory(partnership=partnership, external_user_id="alice", attributes={"a": 1})

    put = test_client.put(url(partnership), {"attributes": {"a": 2}}, format="json")
    erase = test_client.delete(url(partnership))

    assert put.status_code == 403
    assert put.json()["code"] == ErrorCode.TEST_KEY_READ_ONLY
    assert erase.status_code == 403
    user = EndUser.objects.get(external_user_id="alice")
    assert user.attributes == {"a": 1} and user.erased_at is None


@pytest.mark.parametrize(
    "condition",
    [
        'user.tier == "gold" && user.age > 20',
        "has(user.age) && user.age > 20",  # has() of a declared attribute tests the map
    ],
)
def test_rules_read_declared_attributes_at_evaluation(
    with_schema, trigger, partner_client, process, condition
):
    campaign = CampaignFactory(trigger=trigger, condition=condition)
    url = f"/partnerships/{with_schema.id}/users"
    partner_client.put(f"{url}/ann", {"attributes": {"tier": "gold", "age": 30}}, format="json")
    partner_client.put(f"{url}/bob", {"attributes": {"tier": "silver"}}, format="json")
    for user in ("ann", "bob"):
        assert send(partner_client, with_schema, user).status_code == 200
    process()

    rewarded = set(campaign.rewards.values_list("end_user__external_user_id", flat=True))
    assert rewarded == {"ann"}
    assert not TriggerEvent.objects.filter(status=TriggerEvent.Status.FAILED).exists()


def test_a_number_attribute_too_large_for_a_float_is_unbound_not_a_failed_event(
    partnership, trigger, partner_client, process
):
    partnership.user_attribute_schema = {"type": "object", "properties": {"n": {"type": "number"}}}
    partnership.save()
    EndUserFactory(partnership=partnership, external_user_id="ann", attributes={"n": 10**400})
    reads = CampaignFactory(trigger=trigger, condition="user.n > 1.0", priority=2)
    every = CampaignFactory(trigger=trigger, condition="true", priority=1)

    assert send(partner_client, partnership, "ann").status_code == 200
    process()

    event = TriggerEvent.objects.get()
    assert event.status == TriggerEvent.Status.PROCESSED, event.error
    assert not reads.rewards.exists()
    assert every.rewards.count() == 1


# --- GET ---------------------------------------------------------------------------------


def _reward(campaign, user, amount, mode, reversed_amount="0"):
    from tests.factories import RewardFactory

    return RewardFactory(
        campaign=campaign,
        end_user=user,
        amount=Decimal(amount),
        reversed_amount=Decimal(reversed_amount),
        mode=mode,
    )


def test_get_shows_attributes_and_the_totals_of_the_keys_mode_only(
    partner_client, test_client, partnership, trigger
):
    user = EndUserFactory(partnership=partnership, external_user_id="alice", attributes={"t": 1})
    campaign = CampaignFactory(trigger=trigger)
    _reward(campaign, user, "10", "live", reversed_amount="4")
    _reward(campaign, user, "5", "live")
    _reward(campaign, user, "7", "test")

    live = partner_client.get(url(partnership)).json()["data"]
    test = test_client.get(url(partnership)).json()["data"]

    assert live["attributes"] == {"t": 1}
    assert live["blocked"] is False and live["created_at"]
    assert live["mode"] == "live"
    assert live["totals"] == [
        {
            "unit": "Points",
            "rewards_count": 2,
            "amount": "15.00",
            "reversed": "4.00",
            "balance": "11.00",
        }
    ]
    assert test["mode"] == "test"
    assert [(t["rewards_count"], t["amount"]) for t in test["totals"]] == [(1, "7.00")]


def test_get_an_unknown_user_is_404(partner_client, partnership):
    response = partner_client.get(url(partnership, "nobody"))

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.USER_DOES_NOT_EXIST


# --- erasure -----------------------------------------------------------------------------


@pytest.fixture
def earned(partner_client, partnership, trigger, process):
    """alice earned a capped reward (one per user) from an event."""
    campaign = CampaignFactory(trigger=trigger, max_rewards_per_user=1, budget=Decimal("100"))
    partner_client.put(url(partnership), {"attributes": {"email": "a@x"}}, format="json")
    assert send(partner_client, partnership, key="k1").status_code in (200, 201, 202)
    process()
    return campaign


def _ledger(campaign):
    rewards = list(Reward.objects.filter(campaign=campaign).values_list("amount", "end_user_id"))
    counters = list(CampaignCounter.objects.filter(campaign=campaign).values_list("spent"))
    return rewards, counters


def _assert_erased(partnership, user_id, before, campaign):
    user = EndUser.objects.get(pk=user_id)
    assert user.erased_at is not None
    assert user.external_user_id != "alice" and user.attributes == {}
    assert not EndUser.objects.filter(partnership=partnership, external_user_id="alice").exists()
    events = TriggerEvent.objects.filter(end_user=user)
    assert events.exists() and all(event.context == {} for event in events)
    assert _ledger(campaign) == before
    entry = AuditEntry.objects.get(action="enduser.erase", target_id=str(user_id))
    assert "alice" not in entry.target_repr


def test_erasure_by_api_keeps_rewards_and_budgets_and_forgets_the_user(
    partner_client, partnership, earned, api_key
):
    user_id = EndUser.objects.get(external_user_id="alice").pk
    before = _ledger(earned)
    assert before[0], "the event earned a reward"

    response = partner_client.delete(url(partnership))

    assert response.status_code == 200, response.content
    assert response.json()["data"]["user_uuid"] == str(user_id)
    _assert_erased(partnership, user_id, before, earned)
    entry = AuditEntry.objects.get(action="enduser.erase", target_id=str(user_id))
    assert (entry.actor, entry.actor_name) == (None, f"api key {api_key.prefix}")


def test_the_old_external_id_is_unreachable_after_erasure(partner_client, partnership, earned):
    partner_client.delete(url(partnership))

    for response in (
        partner_client.get(url(partnership)),
        partner_client.put(url(partnership), {"attributes": {}}, format="json"),
        partner_client.delete(url(partnership)),
        send(partner_client, partnership),  # a new event (the cached path: test_user_erasure_races)
        send(partner_client, partnership, key="k1"),  # the idempotent retry of the first event
    ):
        assert response.status_code == 410, response.content
        assert response.json()["code"] == ErrorCode.USER_ERASED
    assert TriggerEvent.objects.count() == 1
    assert Reward.objects.count() == 1
    assert partner_client.get(url(partnership) + "/balance").status_code == 404


def test_an_erased_users_event_by_user_uuid_is_refused(partner_client, partnership, earned):
    user_id = EndUser.objects.get(external_user_id="alice").pk
    partner_client.delete(url(partnership))

    response = partner_client.post(
        f"/partnerships/{partnership.id}/triggers",
        {
            "trigger_name": "transaction_completed",
            "user_uuid": str(user_id),
            "transaction_context": {"amount": 1, "currency": "USD"},
        },
        format="json",
    )

    assert response.status_code == 410
    assert TriggerEvent.objects.count() == 1


def test_erasure_by_command(partnership, earned):
    user_id = EndUser.objects.get(external_user_id="alice").pk
    before = _ledger(earned)

    call_command("erase_user", str(partnership.id), "alice")

    _assert_erased(partnership, user_id, before, earned)
    with pytest.raises(CommandError, match="already erased"):
        call_command("erase_user", str(partnership.id), "alice")


def test_erasure_from_pilot_needs_the_permission_and_the_external_id(
    client, django_user_model, partnership, earned
):
    from django.contrib.auth.models import Permission

    from partnerships.models import PartnershipMember

    user = EndUser.objects.get(external_user_id="alice")
    before = _ledger(earned)
    operator = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="view_enduser"))
    PartnershipMember.objects.create(user=operator, partnership=partnership)
    client.force_login(operator)
    erase_url = f"/pilot/partnerships/enduser/{user.pk}/erase/"

    assert client.get(erase_url).status_code == 403

    operator.user_permissions.add(Permission.objects.get(codename="erase_enduser"))
    operator = django_user_model.objects.get(pk=operator.pk)
    client.force_login(operator)
    page = client.get(f"/pilot/partnerships/enduser/{user.pk}/change/")
    assert b"Erase (GDPR)" in page.content
    wrong = client.post(erase_url, {"confirm": "bob"})
    assert wrong.status_code == 400
    assert EndUser.objects.get(pk=user.pk).erased_at is None

    done = client.post(erase_url, {"confirm": "alice"})

    assert done.status_code == 302
    _assert_erased(partnership, user.pk, before, earned)
    assert AuditEntry.objects.get(action="enduser.erase").actor == operator
