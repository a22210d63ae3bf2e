"""DELETE /management/v1/partnerships/{id}: a partnership never used is deleted; one with any
history is suspended (its keys stop), and nothing it has is lost."""

import pytest
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete
from rest_framework.test import APIClient

from config.errors import ErrorCode
from partnerships import roles
from partnerships.models import ApiKey, AuditEntry, EndUser, Partnership
from partnerships.services import api_key_issue
from rewards.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create
from tests.factories import EndUserFactory, PartnershipFactory, TriggerFactory

from .conftest import BASE, operator, staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(django_user_model):
    return operator(django_user_model, "root", roles.ADMIN, superuser=True)


def _delete(client, partnership, revision=None):
    etag = f'"{partnership.revision if revision is None else revision}"'
    return client.delete(f"{BASE}/partnerships/{partnership.pk}", HTTP_IF_MATCH=etag)


def test_a_partnership_never_used_is_deleted_with_its_keys(root):
    partnership = PartnershipFactory()
    api_key_issue(api_key=ApiKey(partnership=partnership, name="backend"))

    response = _delete(staff_client(root, roles.ADMIN), partnership)

    assert response.status_code == 204
    assert not Partnership.objects.filter(pk=partnership.pk).exists()
    assert not ApiKey.objects.filter(partnership_id=partnership.pk).exists()
    assert AuditEntry.objects.filter(action="partnership.delete").count() == 1


def test_a_partnership_with_history_is_suspended_and_its_key_stops(root):
    partnership = PartnershipFactory()
    trigger = TriggerFactory(partnership=partnership)
    user = EndUserFactory(partnership=partnership)
    issued = api_key_issue(api_key=ApiKey(partnership=partnership, name="backend"))
    partner = APIClient()
    balance = f"/partnerships/{partnership.pk}/users/{user.external_user_id}/balance"
    assert partner.get(balance, HTTP_X_API_KEY=issued.plaintext).status_code == 200

    response = _delete(staff_client(root, roles.ADMIN), partnership)

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["status"] == "suspended"
    partnership.refresh_from_db()
    assert partnership.status == Partnership.Status.SUSPENDED
    assert trigger.__class__.objects.filter(pk=trigger.pk).exists()
    assert EndUser.objects.filter(pk=user.pk).exists()
    refused = partner.get(balance, HTTP_X_API_KEY=issued.plaintext)
    assert refused.status_code == 403
    assert refused.json()["code"] == ErrorCode.PARTNERSHIP_SUSPENDED
    entry = AuditEntry.objects.get(action="partnership.suspend")
    assert entry.changes["status"] == ["active", "suspended"]


def test_only_an_unscoped_admin_token_deletes_and_it_needs_the_etag(django_user_model, root):
    partnership = PartnershipFactory()
    scoped = staff_client(root, roles.ADMIN, partnership)
    manager = staff_client(root, roles.CAMPAIGN_MANAGER)
    admin = staff_client(root, roles.ADMIN)

    assert _delete(scoped, partnership).status_code == 403
    assert _delete(manager, partnership).status_code == 403
    stale = _delete(admin, partnership, revision=partnership.revision + 5)
    missing = admin.delete(f"{BASE}/partnerships/{partnership.pk}")

    assert stale.status_code == 412 and stale.json()["code"] == ErrorCode.VERSION_CONFLICT
    assert missing.status_code == 428
    assert Partnership.objects.filter(pk=partnership.pk, status="active").exists()


def test_a_partnership_with_only_a_webhook_endpoint_is_suspended_not_deleted(root):
    partnership = PartnershipFactory()
    endpoint = webhook_endpoint_create(
        endpoint=WebhookEndpoint(partnership=partnership, url="https://hooks.example.com/x")
    )

    response = _delete(staff_client(root, roles.ADMIN), partnership)

    assert response.status_code == 200
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    partnership.refresh_from_db()
    again = _delete(staff_client(root, roles.ADMIN), partnership)
    assert again.status_code == 409 and again.json()["code"] == ErrorCode.ACTION_REFUSED


def test_every_row_pointing_at_a_partnership_keeps_it_but_its_own(root):
    """Fail closed: a model added later with a foreign key to Partnership (even with a hidden
    reverse relation) makes DELETE suspend, unless it is listed as the partnership's own."""
    from partnerships.services import _OWN_ROWS

    pointing = {
        field.related_model._meta.label_lower
        for field in Partnership._meta.get_fields(include_hidden=True)
        if field.auto_created and not field.concrete
    }
    assert pointing > _OWN_ROWS
    assert "rewards.webhookendpoint" in pointing - _OWN_ROWS
    assert "triggers.triggerevent" in pointing - _OWN_ROWS


def test_lifting_a_suspension_takes_an_unscoped_admin_token(root):
    partnership = PartnershipFactory(status=Partnership.Status.SUSPENDED)
    scoped = staff_client(root, roles.ADMIN, partnership)
    patch = {"status": "active"}
    etag = f'"{partnership.revision}"'
    url = f"{BASE}/partnerships/{partnership.pk}"

    refused = scoped.patch(url, patch, format="json", HTTP_IF_MATCH=etag)
    lifted = staff_client(root, roles.ADMIN).patch(url, patch, format="json", HTTP_IF_MATCH=etag)

    assert refused.status_code == 403
    assert lifted.status_code == 200 and lifted.json()["data"]["status"] == "active"


def test_a_delete_refused_by_an_unforeseen_protected_row_leaves_only_a_suspend_entry(root):
    """A row the check does not know (here: a receiver refusing, as a PROTECT foreign key
    would) makes the delete a suspension; the log says what happened, not both."""
    partnership = PartnershipFactory()

    def protected(sender, instance, **kwargs):
        if isinstance(instance, Partnership):
            raise ProtectedError("an unforeseen row protects it", set())

    pre_delete.connect(protected, weak=False, dispatch_uid="test-unforeseen-protect")
    try:
        response = _delete(staff_client(root, roles.ADMIN), partnership)
    finally:
        pre_delete.disconnect(dispatch_uid="test-unforeseen-protect")

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["status"] == "suspended"
    actions = list(AuditEntry.objects.filter(target_id=str(partnership.pk)).values_list("action"))
    assert actions == [("partnership.suspend",)]
