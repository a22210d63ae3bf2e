"""Benji's member page in Pilot: a user's attributes, events, rewards and balance; blocking
(a blocked user earns nothing, with its own decision outcome) and unblocking."""

import html
import re
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from config.json_input import NOT_FINITE, TOO_DEEP
from partnerships.models import AuditEntry, EndUser
from partnerships.services import ATTRIBUTES_CHANGED, end_user_block
from rewards.admin import EndUserPilotAdmin
from rewards.models import CampaignCounter, Reward
from rewards.services.reversal import reward_reverse
from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    EndUserFactory,
    PartnershipFactory,
    RewardFactory,
    TriggerEventFactory,
)
from tests.pilot_support import change_form_data, page_text, pilot_operator
from tests.support import process_queued

pytestmark = pytest.mark.django_db

USERS = "/pilot/partnerships/enduser/"


@pytest.fixture
def support(django_user_model, partnership):
    """Support: sees users, events and rewards of the partnership, may block."""
    return pilot_operator(
        django_user_model,
        "support",
        partnerships=[partnership],
        perms=(
            "partnerships.view_enduser",
            "partnerships.block_enduser",
            "triggers.view_triggerevent",
            "rewards.view_reward",
        ),
    )


@pytest.fixture
def alice(partnership):
    return EndUserFactory(
        partnership=partnership, external_user_id="alice", attributes={"tier": "gold"}
    )


def cells(text: str, table_id: str) -> list[list[str]]:
    """The rows of a table of the page, as the operator reads them."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', text, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if "<td>" in row
    ]


def test_the_page_shows_attributes_events_rewards_and_the_balance(
    support, partnership, alice, django_user_model
):
    campaign = CampaignFactory(trigger__partnership=partnership, slug="cashback")
    RewardFactory(campaign=campaign, end_user=alice, amount=Decimal("10"))
    halved = RewardFactory(
        campaign=campaign, end_user=alice, amount=Decimal("6"), trigger_event__status="processed"
    )
    RewardFactory(campaign=campaign, end_user=alice, amount=Decimal("2.5"), mode="test")
    # The workers' counters of the two live rewards, which a reversal gives back to.
    CampaignCounter.objects.create(campaign=campaign, mode="live", reward_count=2, spent=16)
    operator = django_user_model.objects.create_user("maria", is_staff=True)
    reward_reverse(reward=halved, operator=operator, reason="refund", amount=Decimal("3"))

    text = page_text(support.get(f"{USERS}{alice.pk}/change/"))

    shown = html.unescape(re.sub(r"<[^>]+>|\s+", "", text))
    assert '"tier":"gold"' in shown
    assert cells(text, "balance") == [
        ["live", "Points", "16.00", "3.00", "13.00"],
        ["test", "Points", "2.50", "0.00", "2.50"],
    ]
    assert len(cells(text, "events")) == 3
    assert len(cells(text, "user-rewards")) == 3
    assert f"/pilot/triggers/triggerevent/?end_user={alice.pk}" in text


def test_block_then_events_decide_user_blocked_and_earn_nothing_until_unblocked(
    support, partnership, alice, trigger
):
    CampaignFactory(trigger=trigger, slug="welcome")
    CampaignFactory(trigger=trigger, slug="big-only", condition="context.amount > 1000.0")

    page = page_text(support.get(f"{USERS}{alice.pk}/change/"))
    response = support.post(f"{USERS}{alice.pk}/block/", {"reason": "fraud ring"}, follow=True)
    blocked_event = TriggerEventFactory(trigger=trigger, end_user=alice)
    process_queued()

    assert f"{USERS}{alice.pk}/block/" in page
    assert "alice is blocked" in page_text(response)
    alice.refresh_from_db()
    assert (alice.blocked_by, alice.blocked_reason) == (support.user, "fraud ring")
    entry = AuditEntry.objects.get(action="enduser.block")
    assert (entry.actor, entry.target_id, entry.changes["reason"]) == (
        support.user,
        str(alice.pk),
        "fraud ring",
    )
    assert not Reward.objects.filter(trigger_event=blocked_event).exists()
    event_page = page_text(support.get(f"/pilot/triggers/triggerevent/{blocked_event.pk}/change/"))
    assert "<td>welcome</td><td>user_blocked</td>" in event_page
    assert "<td>big-only</td><td>user_blocked</td>" in event_page
    assert "the user is blocked: they earn nothing until unblocked" in event_page

    support.post(f"{USERS}{alice.pk}/unblock/")
    later = TriggerEventFactory(trigger=trigger, end_user=alice)
    process_queued()

    alice.refresh_from_db()
    assert alice.blocked_at is None
    assert AuditEntry.objects.filter(action="enduser.unblock").count() == 1
    assert Reward.objects.filter(trigger_event=later).count() == 1


def test_blocking_needs_a_reason(support, alice):
    response = support.post(f"{USERS}{alice.pk}/block/", {"reason": "  "})

    assert response.status_code == 400
    assert "This field is required." in page_text(response)
    alice.refresh_from_db()
    assert alice.blocked_at is None


def test_unblocking_a_user_who_is_not_blocked_says_so(support, alice):
    response = support.post(f"{USERS}{alice.pk}/unblock/")

    assert response.status_code == 400
    assert "alice is not blocked." in page_text(response)
    assert not AuditEntry.objects.exists()


def test_blocking_needs_the_block_permission(django_user_model, partnership, alice):
    viewer = pilot_operator(django_user_model, "viewer", partnerships=[partnership])

    page = page_text(viewer.get(f"{USERS}{alice.pk}/change/"))
    response = viewer.post(f"{USERS}{alice.pk}/block/", {"reason": "fraud"})

    assert f"{USERS}{alice.pk}/block/" not in page
    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.blocked_at is None


def test_an_operator_of_a_cannot_see_or_block_bs_users(support, alice):
    bob = EndUserFactory(partnership=PartnershipFactory(name="B"), external_user_id="bob")

    listed = page_text(support.get(USERS))

    assert "alice" in listed and "bob" not in listed
    assert support.get(f"{USERS}{bob.pk}/change/").status_code == 404
    assert support.post(f"{USERS}{bob.pk}/block/", {"reason": "x"}).status_code == 404
    bob.refresh_from_db()
    assert bob.blocked_at is None


def test_the_user_search_is_exact(support, alice):
    found = support.get(USERS, {"q": "alice"})
    partial = support.get(USERS, {"q": "ali"})

    assert list(found.context["cl"].result_list) == [alice]
    assert list(partial.context["cl"].result_list) == []


def test_reports_count_the_user_blocked_decisions(admin_client, partnership, alice, trigger):
    CampaignFactory(trigger=trigger, slug="welcome")
    CampaignFactory(trigger=trigger, slug="second")

    end_user_block(end_user=alice, operator=None, reason="fraud")
    TriggerEventFactory(trigger=trigger, end_user=alice)
    process_queued()

    response = admin_client.get("/pilot/reports/", {"partnership": partnership.pk})

    text = page_text(response)
    assert re.search(
        r'title="user_blocked">User blocked</th><td data-figure="outcome:user_blocked">2<', text
    )


def test_blocked_users_cost_no_query_per_event(partnership, trigger):
    """``blocked_at`` is read with the batch's user attributes: one event or five of blocked
    users, the same statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    CampaignFactory(trigger=trigger, slug="welcome")

    def statements(events: int) -> int:
        for _ in range(events):
            user = EndUserFactory(partnership=partnership)
            end_user_block(end_user=user, operator=None, reason="fraud")
            TriggerEventFactory(trigger=trigger, end_user=user)
        with CaptureQueriesContext(connection) as queries:
            process_queued()
        # Only the statements that read users: the rest varies with the config cache's expiry
        # and the queue's housekeeping, not with the events.
        return sum('"partnerships_enduser"' in query["sql"] for query in queries)

    statements(1)  # the caches warm (the trigger's campaigns, the partnership)

    assert statements(1) == statements(5) >= 1
    assert not Reward.objects.exists()


def _send(client, partnership, key: str):
    body = {
        "trigger_name": "transaction_completed",
        "external_user_id": "alice",
        "transaction_context": {"amount": 25, "currency": "USD"},
    }
    return client.post(
        f"/partnerships/{partnership.id}/triggers", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_an_operator_of_two_partnerships_cannot_move_a_user_to_the_other(
    django_user_model, partner_client, partnership, trigger
):
    CampaignFactory(trigger=trigger, max_rewards_per_user=1, budget=Decimal("100"))
    assert _send(partner_client, partnership, "k1").status_code == 200
    process_queued()
    other = PartnershipFactory()
    operator = pilot_operator(
        django_user_model,
        "both",
        partnerships=[partnership, other],
        perms=("partnerships.view_enduser", "partnerships.change_enduser"),
    )
    alice = EndUser.objects.get(external_user_id="alice")
    page = operator.get(f"{USERS}{alice.pk}/change/")

    operator.post(f"{USERS}{alice.pk}/change/", {**change_form_data(page), "partnership": other.pk})

    assert 'name="partnership"' not in page_text(page)  # shown, not editable
    alice.refresh_from_db()
    assert alice.partnership_id == partnership.pk
    their_key = APIClient()
    their_key.credentials(HTTP_X_API_KEY=ApiKeyFactory(partnership=other).plaintext)
    assert their_key.get(f"/partnerships/{other.id}/users/alice/rewards").status_code == 404
    # the per-user cap still counts alice's reward here
    assert _send(partner_client, partnership, "k2").status_code == 200
    process_queued()
    assert Reward.objects.filter(end_user__external_user_id="alice").count() == 1
    assert EndUser.objects.filter(external_user_id="alice").count() == 1


def test_attributes_a_partner_put_after_the_page_opened_are_not_overwritten(
    admin_client, partner_client, partnership, alice
):
    page = admin_client.get(f"{USERS}{alice.pk}/change/")
    put = partner_client.put(
        f"/partnerships/{partnership.id}/users/alice",
        {"attributes": {"tier": "basic"}},
        format="json",
    )

    response = admin_client.post(
        f"{USERS}{alice.pk}/change/",
        {**change_form_data(page), "attributes": '{"tier": "gold", "note": "called"}'},
    )

    assert put.status_code == 200
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.non_field_errors() == [ATTRIBUTES_CHANGED]
    alice.refresh_from_db()
    assert alice.attributes == {"tier": "basic"}


def test_attributes_written_as_the_page_saves_them_are_not_overwritten(
    admin_client, partnership, alice, monkeypatch
):
    """The other write commits after the form was checked, before the save wrote."""
    page = admin_client.get(f"{USERS}{alice.pk}/change/")
    checked_then_saved = EndUserPilotAdmin.save_model

    def save_after_the_partners_write(admin_self, request, obj, form, change):
        EndUser.objects.filter(pk=alice.pk).update(attributes={"tier": "basic"})
        checked_then_saved(admin_self, request, obj, form, change)

    monkeypatch.setattr(EndUserPilotAdmin, "save_model", save_after_the_partners_write)

    response = admin_client.post(
        f"{USERS}{alice.pk}/change/",
        {**change_form_data(page), "attributes": '{"tier": "platinum"}'},
        follow=True,
    )

    assert ATTRIBUTES_CHANGED in [str(message) for message in response.context["messages"]]
    alice.refresh_from_db()
    assert alice.attributes == {"tier": "gold"}  # the update rolled back with the refused save


def test_a_page_saved_without_attribute_changes_writes_none(
    admin_client, partner_client, partnership, alice
):
    page = admin_client.get(f"{USERS}{alice.pk}/change/")
    partner_client.put(
        f"/partnerships/{partnership.id}/users/alice",
        {"attributes": {"tier": "basic"}},
        format="json",
    )
    form = change_form_data(page)
    form["attributes"] = form["loaded_attributes"]

    response = admin_client.post(f"{USERS}{alice.pk}/change/", form)

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.attributes == {"tier": "basic"}


def test_a_user_added_in_pilot_gets_its_partnership_and_attributes(admin_client, partnership):
    response = admin_client.post(
        f"{USERS}add/",
        {
            "partnership": partnership.pk,
            "external_user_id": "bob",
            "attributes": '{"tier": "gold"}',
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    bob = EndUser.objects.get(external_user_id="bob")
    assert (bob.partnership_id, bob.attributes) == (partnership.pk, {"tier": "gold"})


@pytest.mark.parametrize("field", ["attributes", "loaded_attributes"])
def test_json_nested_deeper_than_python_can_parse_is_a_form_error(admin_client, alice, field):
    page = admin_client.get(f"{USERS}{alice.pk}/change/")
    form = {**change_form_data(page), "attributes": '{"tier": "silver"}'}

    response = admin_client.post(
        f"{USERS}{alice.pk}/change/", {**form, field: "[" * 3000 + "]" * 3000}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [TOO_DEEP]
    alice.refresh_from_db()
    assert alice.attributes == {"tier": "gold"}


@pytest.mark.parametrize("attributes", ['{"tier": NaN}', '{"cap": -Infinity}', '{"cap": 1e999}'])
def test_attributes_with_a_number_that_is_not_finite_are_refused(
    admin_client, partnership, alice, attributes
):
    page = admin_client.get(f"{USERS}{alice.pk}/change/")

    changed = admin_client.post(
        f"{USERS}{alice.pk}/change/", {**change_form_data(page), "attributes": attributes}
    )
    added = admin_client.post(
        f"{USERS}add/",
        {"partnership": partnership.pk, "external_user_id": "bob", "attributes": attributes},
    )

    for response in (changed, added):
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["attributes"] == [NOT_FINITE]
    alice.refresh_from_db()
    assert alice.attributes == {"tier": "gold"}
    assert not EndUser.objects.filter(external_user_id="bob").exists()


@pytest.mark.parametrize("attributes", ['{"note": "a\\u0000b"}', '{"note": "\\ud800"}'])
def test_attributes_postgresql_cannot_store_are_a_form_error(admin_client, alice, attributes):
    page = admin_client.get(f"{USERS}{alice.pk}/change/")

    response = admin_client.post(
        f"{USERS}{alice.pk}/change/", {**change_form_data(page), "attributes": attributes}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["attributes"]
    alice.refresh_from_db()
    assert alice.attributes == {"tier": "gold"}
