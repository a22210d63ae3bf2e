"""Erasure holds: an erased external id creates no fresh user by any path (its per-user caps
would start again), the erased row is reachable by no name, its tokens stop, its failed events
are not retried, and the personal data around it (audit entries, event errors and keys,
reversal reasons) goes with it."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from config.errors import ErrorCode
from partnerships.models import AuditEntry, EndUser, UserToken
from partnerships.pseudonyms import erased_external_id
from partnerships.services import end_user_block
from rewards.models import Reversal, Reward
from rewards.services.users import end_user_erase
from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    EndUserFactory,
    PartnershipFactory,
    TriggerEventFactory,
)
from tests.pilot_support import change_form_data
from triggers.models import TriggerEvent
from triggers.services.processing import trigger_event_retry
from triggers.services.test_events import trigger_event_send_test

pytestmark = pytest.mark.django_db


def url(partnership, external_id="alice"):
    return f"/partnerships/{partnership.id}/users/{external_id}"


def send(client, partnership, external_id="alice", key=None, **body):
    body = {
        "trigger_name": "transaction_completed",
        "external_user_id": external_id,
        "transaction_context": {"amount": 25, "currency": "USD"},
        **body,
    }
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/partnerships/{partnership.id}/triggers", body, format="json", **headers)


def issue(client, partnership, external_id="alice"):
    return client.post(
        url(partnership, external_id) + "/tokens", {"scopes": ["rewards:read"]}, format="json"
    )


@pytest.fixture
def erased(partner_client, partnership, trigger, process):
    """alice earned the one reward per user of a campaign, then was erased."""
    CampaignFactory(trigger=trigger, max_rewards_per_user=1, budget=Decimal("100"))
    assert send(partner_client, partnership, key="k1").status_code == 200
    process()
    assert Reward.objects.count() == 1
    user = EndUser.objects.get(external_user_id="alice")
    assert partner_client.delete(url(partnership)).status_code == 200
    user.refresh_from_db()
    return user


@pytest.mark.parametrize("mode", ["live", "test"])
def test_issuing_a_token_for_an_erased_id_is_410_and_creates_no_user(
    partner_client, partnership, erased, mode
):
    issuer = partner_client
    if mode == "test":
        issuer = APIClient()
        issuer.credentials(
            HTTP_X_API_KEY=ApiKeyFactory(partnership=partnership, mode="test").plaintext
        )

    response = issue(issuer, partnership)

    assert response.status_code == 410, response.content
    assert response.json()["code"] == ErrorCode.USER_ERASED
    assert list(EndUser.objects.filter(partnership=partnership)) == [erased]
    assert partner_client.get(url(partnership)).status_code == 410
    assert (
        partner_client.put(url(partnership), {"attributes": {}}, format="json").status_code == 410
    )
    assert Reward.objects.count() == 1


def test_erasing_a_user_whose_pseudonym_is_taken_is_410_not_500(partner_client, partnership):
    pseudonym = erased_external_id(partnership_id=partnership.id, external_user_id="alice")
    EndUserFactory(partnership=partnership, external_user_id=pseudonym)  # erased before the fix
    EndUserFactory(partnership=partnership, external_user_id="alice")  # and re-created

    response = partner_client.delete(url(partnership))

    assert response.status_code == 410, response.content
    assert response.json()["code"] == ErrorCode.USER_ERASED


def test_pilot_cannot_add_a_user_under_an_erased_id_or_a_pseudonym(
    admin_client, partnership, erased
):
    for external_id in ("alice", erased.external_user_id, "erased:whatever"):
        response = admin_client.post(
            "/pilot/partnerships/enduser/add/",
            {"partnership": partnership.pk, "external_user_id": external_id, "attributes": "{}"},
        )

        assert response.status_code == 200  # the form again, with its error
        assert response.context["adminform"].form.errors["external_user_id"]
    assert list(EndUser.objects.filter(partnership=partnership)) == [erased]


def test_the_pseudonym_names_nothing(partner_client, partnership, erased):
    pseudonym = erased.external_user_id
    assert pseudonym.startswith("erased:")

    responses = [
        partner_client.get(url(partnership, pseudonym)),
        partner_client.put(url(partnership, pseudonym), {"attributes": {"n": "A"}}, format="json"),
        partner_client.patch(
            url(partnership, pseudonym), {"attributes": {"n": "A"}}, format="json"
        ),
        partner_client.delete(url(partnership, pseudonym)),
        partner_client.get(url(partnership, pseudonym) + "/rewards"),
        partner_client.get(url(partnership, pseudonym) + "/balance"),
        issue(partner_client, partnership, pseudonym),
        send(partner_client, partnership, pseudonym),
    ]

    for response in responses:
        assert response.status_code == 422, response.content
        assert response.json()["errors"][0]["field"] == "external_user_id"
        assert response.json()["errors"][0]["code"] == "reserved"
    erased.refresh_from_db()
    assert erased.attributes == {}
    assert TriggerEvent.objects.count() == 1
    assert UserToken.objects.count() == 0


def test_an_erased_row_found_by_its_id_is_refused_by_the_user_api(partner_client, partnership):
    """A row erased yet holding a plain id (as a pre-fix resurrection left it) is still erased."""
    EndUserFactory(partnership=partnership, external_user_id="alice", erased_at="2026-01-01T00:00Z")

    for response in (
        partner_client.get(url(partnership)),
        partner_client.put(url(partnership), {"attributes": {"x": 1}}, format="json"),
        issue(partner_client, partnership),
    ):
        assert response.status_code == 410, response.content
    assert EndUser.objects.get(external_user_id="alice").attributes == {}


def test_erasure_revokes_the_users_tokens(partner_client, partnership):
    token = issue(partner_client, partnership).json()["data"]
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")
    assert app.get(url(partnership) + "/balance").status_code == 200

    assert partner_client.delete(url(partnership)).status_code == 200

    assert UserToken.objects.get(pk=token["token_id"]).revoked_at is not None
    refused = app.get(url(partnership) + "/balance")
    assert refused.status_code == 401
    assert refused.json()["code"] == ErrorCode.TOKEN_REVOKED


def test_a_token_of_a_user_erased_as_it_was_issued_is_refused(partner_client, partnership):
    token = issue(partner_client, partnership).json()["data"]
    user = EndUser.objects.get(external_user_id="alice")
    EndUser.objects.filter(pk=user.pk).update(erased_at="2026-01-01T00:00Z")  # revoked_at unset
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")

    assert app.get(url(partnership) + "/balance").json()["code"] == ErrorCode.TOKEN_REVOKED


def test_a_failed_event_of_an_erased_user_cannot_be_retried(
    partner_client, partnership, trigger, admin_user, process
):
    CampaignFactory(trigger=trigger, max_rewards_per_user=1)
    user = EndUserFactory(partnership=partnership, external_user_id="alice")
    event = TriggerEventFactory(
        trigger=trigger, end_user=user, status=TriggerEvent.Status.FAILED, error="boom"
    )
    end_user_erase(end_user=user, via="api")

    with pytest.raises(Exception, match="erased") as refused:
        trigger_event_retry(event=event, operator=admin_user)

    assert refused.value.code == ErrorCode.TRIGGER_EVENT_NOT_RETRYABLE
    event.refresh_from_db()
    assert event.status == TriggerEvent.Status.FAILED
    process()
    assert Reward.objects.count() == 0


def test_erasure_scrubs_the_personal_data_around_the_user(
    partner_client, partnership, trigger, admin_user
):
    ApiKeyFactory(partnership=partnership, mode="test")
    trigger_event_send_test(
        trigger=trigger,
        operator=admin_user,
        external_user_id="alice",
        context={"amount": 1, "currency": "USD"},
    )
    user = EndUser.objects.get(external_user_id="alice")
    end_user_block(end_user=user, operator=admin_user, reason="Alice Smith, alice@x.com: fraud")
    keyed = TriggerEventFactory(
        trigger=trigger,
        end_user=user,
        status=TriggerEvent.Status.FAILED,
        error="refund for Alice Smith",
        idempotency_key="order-alice@x.com",
        request_hash="f" * 64,
    )
    Reversal.objects.create(
        partnership=partnership,
        trigger_event=keyed,
        mode="live",
        reason="Alice Smith asked",
        requested_amount=Decimal("5"),
    )

    assert partner_client.delete(url(partnership)).status_code == 200

    texts = [str(e.changes) + e.target_repr for e in AuditEntry.objects.all()]
    texts += [str(row) for row in TriggerEvent.objects.values_list("error", "idempotency_key")]
    texts += list(Reversal.objects.values_list("reason", flat=True))
    assert not [text for text in texts if "alice" in text.lower()], texts
    keyed.refresh_from_db()
    assert (keyed.idempotency_key, keyed.request_hash, keyed.status) == (None, "", "failed")
    assert Reversal.objects.get().requested_amount == Decimal("5")
    # a retry of the keyed event is refused by its user, key or not
    assert send(partner_client, partnership, key="order-alice@x.com").status_code == 410


def test_an_erased_user_cannot_be_blocked(admin_client, partnership):
    user = EndUserFactory(partnership=partnership, external_user_id="alice")
    end_user_erase(end_user=user, via="api")

    response = admin_client.post(f"/pilot/partnerships/enduser/{user.pk}/block/", {"reason": "A"})

    assert response.status_code == 400
    user.refresh_from_db()
    assert (user.blocked_at, user.blocked_reason) == (None, "")


def test_another_user_reusing_an_erased_users_key_is_409_and_a_retry_410(
    partner_client, partnership, trigger
):
    assert send(partner_client, partnership, key="order-1").status_code == 200
    # erased with its events' keys kept (as before erasure forgot them)
    pseudonym = erased_external_id(partnership_id=partnership.id, external_user_id="alice")
    EndUser.objects.filter(external_user_id="alice").update(
        external_user_id=pseudonym, erased_at="2026-01-01T00:00Z"
    )

    bob = send(partner_client, partnership, "bob", key="order-1")
    retry = send(partner_client, partnership, key="order-1")

    assert bob.status_code == 409, bob.content
    assert bob.json()["code"] == ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert retry.status_code == 410
    assert TriggerEvent.objects.count() == 1


def test_after_erasure_the_users_idempotency_keys_are_forgotten(
    partner_client, partnership, trigger
):
    assert send(partner_client, partnership, key="order-1").status_code == 200
    assert partner_client.delete(url(partnership)).status_code == 200

    bob = send(partner_client, partnership, "bob", key="order-1")

    assert bob.status_code == 200, bob.content
    assert "Idempotent-Replayed" not in bob.headers
    assert TriggerEvent.objects.count() == 2


def test_an_external_id_with_a_slash_is_addressed_by_every_user_route(
    partner_client, partnership, trigger
):
    assert send(partner_client, partnership, "shop/42").status_code == 200
    path = url(partnership, "shop/42")

    put = partner_client.put(path, {"attributes": {"tier": "gold"}}, format="json")
    got = partner_client.get(path)
    balance = partner_client.get(path + "/balance")
    rewards = partner_client.get(path + "/rewards")
    token = issue(partner_client, partnership, "shop/42")
    revoked = partner_client.delete(path + "/tokens")
    erased = partner_client.delete(path)

    assert put.status_code == 200, put.content
    assert got.json()["data"]["external_user_id"] == "shop/42"
    assert balance.status_code == 200 and rewards.status_code == 200
    assert token.json()["data"]["external_user_id"] == "shop/42"
    assert revoked.json()["data"] == {"revoked": 1}
    assert erased.status_code == 200
    assert EndUser.objects.get().erased_at is not None


def test_an_erased_user_cannot_be_moved_to_another_partnership_to_free_its_id(
    admin_client, partner_client, partnership, erased, process
):
    other = PartnershipFactory()
    page = admin_client.get(f"/pilot/partnerships/enduser/{erased.pk}/change/")

    admin_client.post(
        f"/pilot/partnerships/enduser/{erased.pk}/change/",
        {**change_form_data(page), "partnership": other.pk},
    )

    erased.refresh_from_db()
    assert erased.partnership_id == partnership.pk
    # alice is still erased here: no fresh user, no second reward past the per-user cap
    response = send(partner_client, partnership, key="k2")
    assert response.status_code == 410, response.content
    process()
    assert Reward.objects.count() == 1
    assert EndUser.objects.filter(partnership=partnership).count() == 1
