"""Rotating a partner key: a new key at once, the old one for the chosen overlap, then
Benji's 400 ``invalid_token``; in Pilot (an audited action) and as a command."""

import html
import json
import re
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode
from partnerships.admin import ApiKeyAdmin
from partnerships.keys import matches
from partnerships.models import ApiKey, AuditEntry
from partnerships.services import (
    ROTATED_EXPIRY,
    api_key_revoke,
    api_key_rotate,
    api_key_update,
)

pytestmark = pytest.mark.django_db


def _status(api_client, api_key_or_plaintext, partnership) -> tuple[int, str]:
    response = api_client.get(
        f"/partnerships/{partnership.id}", HTTP_X_API_KEY=api_key_or_plaintext
    )
    return response.status_code, response.json()["code"]


def test_the_old_key_works_until_the_overlap_ends_then_is_invalid(api_client, api_key):
    partnership = api_key.partnership
    assert _status(api_client, api_key.plaintext, partnership) == (200, "ok")  # cached now

    rotated = api_key_rotate(api_key=api_key, overlap_hours=24)

    assert _status(api_client, rotated.new.plaintext, partnership) == (200, "ok")
    with time_machine.travel(timezone.now() + timedelta(hours=23, minutes=59)):
        assert _status(api_client, api_key.plaintext, partnership) == (200, "ok")
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        # The key's cached record (warm above) does not keep it alive.
        assert _status(api_client, api_key.plaintext, partnership) == (400, "invalid_token")
        assert _status(api_client, rotated.new.plaintext, partnership) == (200, "ok")


def test_a_rotation_without_overlap_stops_the_old_key_at_once(api_client, api_key):
    assert _status(api_client, api_key.plaintext, api_key.partnership)[0] == 200

    api_key_rotate(api_key=api_key, overlap_hours=0)

    assert _status(api_client, api_key.plaintext, api_key.partnership) == (400, "invalid_token")


def test_the_new_key_keeps_partnership_mode_name_and_rate_limit(api_key):
    api_key.rate_limit_per_second, api_key.mode = 7, "test"
    api_key.save()

    rotated = api_key_rotate(api_key=api_key, overlap_hours=1)

    new = ApiKey.objects.get(pk=rotated.new.api_key.pk)
    assert (new.partnership_id, new.mode, new.name, new.rate_limit_per_second) == (
        api_key.partnership_id,
        "test",
        api_key.name,
        7,
    )
    assert new.expires_at is None and matches(rotated.new.plaintext, new.hashed_key)
    api_key.refresh_from_db()
    assert api_key.replaced_by_id == new.pk


def test_an_earlier_expiry_of_the_old_key_is_kept(api_key):
    soon = timezone.now() + timedelta(hours=2)
    api_key.expires_at = soon
    api_key.save()

    rotated = api_key_rotate(api_key=api_key, overlap_hours=24)

    assert rotated.old.expires_at == soon


def test_the_new_key_expires_when_the_old_one_was_to_expire(api_client, api_key):
    end = timezone.now() + timedelta(days=30)
    api_key.expires_at = end
    api_key.save()

    rotated = api_key_rotate(api_key=api_key, overlap_hours=24)

    assert ApiKey.objects.get(pk=rotated.new.api_key.pk).expires_at == end
    with time_machine.travel(end + timedelta(seconds=1)):
        status = _status(api_client, rotated.new.plaintext, api_key.partnership)
        assert status == (400, "invalid_token")


@pytest.mark.parametrize("hours", [-1, 169])
def test_the_overlap_is_bounded(api_key, hours):
    with pytest.raises(ApplicationError) as raised:
        api_key_rotate(api_key=api_key, overlap_hours=hours)

    assert raised.value.status == 422 and raised.value.errors[0]["field"] == "overlap_hours"
    assert ApiKey.objects.count() == 1


def test_a_revoked_or_already_rotated_key_is_not_rotated(api_key):
    api_key_rotate(api_key=api_key, overlap_hours=1)
    with pytest.raises(ApplicationError) as raised:
        api_key_rotate(api_key=api_key, overlap_hours=1)
    assert raised.value.code == ErrorCode.API_KEY_NOT_ROTATABLE

    api_key.refresh_from_db()
    api_key.replaced_by.revoked_at = timezone.now()
    api_key.replaced_by.save()
    with pytest.raises(ApplicationError, match="revoked"):
        api_key_rotate(api_key=api_key.replaced_by, overlap_hours=1)
    assert ApiKey.objects.count() == 2


def test_rotate_command_prints_the_new_key_and_the_old_ones_end(api_client, api_key):
    out = StringIO()
    call_command("rotate_api_key", api_key.prefix, "--overlap-hours", "2", "--json", stdout=out)
    result = json.loads(out.getvalue())

    assert result["old_prefix"] == api_key.prefix
    assert _status(api_client, result["api_key"], api_key.partnership) == (200, "ok")
    api_key.refresh_from_db()
    assert abs(api_key.expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    assert AuditEntry.objects.filter(action="apikey.rotate", target_id=str(api_key.pk)).exists()
    with pytest.raises(CommandError, match="already rotated"):
        call_command("rotate_api_key", api_key.prefix, stdout=StringIO())


def test_rotating_in_pilot_shows_the_new_key_once_and_both_expiries(admin_client, api_key):
    page = admin_client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/")
    assert b"/rotate/" in page.content

    response = admin_client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/rotate/", {"overlap_hours": "24"}, follow=True
    )

    shown = set(re.findall(r"pk_live_[a-z0-9]{8}\.[A-Za-z0-9_\-]+", response.content.decode()))
    new = ApiKey.objects.exclude(pk=api_key.pk).get()
    assert len(shown) == 1 and matches(shown.pop(), new.hashed_key)
    api_key.refresh_from_db()
    assert api_key.replaced_by == new and api_key.expires_at is not None
    entry = AuditEntry.objects.get(action="apikey.rotate")
    assert entry.changes["replaced_by"] == new.prefix and entry.actor_name == "admin"
    listing = admin_client.get(f"/pilot/partnerships/partnership/{api_key.partnership_id}/change/")
    assert api_key.prefix in listing.content.decode() and new.prefix in listing.content.decode()
    old_page = admin_client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/").content
    assert b"Replaced by" in old_page and b"/rotate/" not in old_page


def test_rotating_needs_the_key_permissions(client, django_user_model, api_key):
    from django.contrib.auth.models import Permission

    from partnerships.models import PartnershipMember

    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_apikey"))
    PartnershipMember.objects.create(user=user, partnership=api_key.partnership)
    client.force_login(user)

    page = client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/")
    refused = client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/rotate/", {"overlap_hours": "24"}
    )

    assert page.status_code == 200 and b"/rotate/" not in page.content
    assert refused.status_code == 403
    assert ApiKey.objects.count() == 1


def test_a_rate_limit_edited_in_pilot_is_enforced(admin_client, api_client, api_key):
    partnership = api_key.partnership
    assert _status(api_client, api_key.plaintext, partnership)[0] == 200  # cached: default limit

    response = admin_client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/change/",
        {
            "name": api_key.name,
            "expires_at_0": "",
            "expires_at_1": "",
            "rate_limit_per_second": "2",
        },
    )

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.rate_limit_per_second == 2
    with time_machine.travel(timezone.now().replace(microsecond=100_000) + timedelta(seconds=5)):
        codes = [_status(api_client, api_key.plaintext, partnership) for _ in range(4)]
    assert codes == [(200, "ok")] * 2 + [(429, "rate_limited")] * 2


KEY_FORM_FIELDS = re.compile(
    r'<input[^>]*\bname="((?:initial-)?(?:name|expires_at_[01]|rate_limit_per_second))"'
    r'(?:[^>]*\bvalue="([^"]*)")?'
)


def key_form(page, **changes) -> dict:
    """What the key's page posts: each field (and the hidden value it was loaded with) as the
    page shows it, then the operator's ``changes``."""
    fields = KEY_FORM_FIELDS.findall(page.content.decode())
    loaded = {name: html.unescape(value) for name, value in fields}
    return {**loaded, **changes}


def test_a_key_page_opened_before_a_rotation_does_not_lift_the_old_keys_expiry(
    admin_client, api_client, api_key
):
    partnership = api_key.partnership
    page = admin_client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/")
    rotated = api_key_rotate(api_key=api_key, overlap_hours=1)  # e.g. by the management API

    response = admin_client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/change/",
        key_form(page, rate_limit_per_second="50"),
    )

    assert response.status_code == 302
    old = ApiKey.objects.get(pk=api_key.pk)
    assert (old.rate_limit_per_second, old.replaced_by) == (50, rotated.new.api_key)
    assert old.expires_at == rotated.old.expires_at
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert _status(api_client, api_key.plaintext, partnership) == (400, "invalid_token")


def test_a_rotated_keys_expiry_is_shown_not_edited(admin_client, api_key):
    rotated = api_key_rotate(api_key=api_key, overlap_hours=24)

    page = admin_client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/")
    admin_client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/change/",
        {**key_form(page), "expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},
    )

    assert 'name="expires_at_0"' not in page.content.decode()
    assert ApiKey.objects.get(pk=api_key.pk).expires_at == rotated.old.expires_at
    with pytest.raises(ApplicationError) as refused:
        api_key_update(api_key=api_key, changes={"expires_at": None})
    assert refused.value.errors[0]["field"] == "expires_at"


def test_an_expiry_changed_on_a_page_opened_before_a_rotation_is_refused_not_dropped(
    admin_client, api_key
):
    page = admin_client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/")
    rotated = api_key_rotate(api_key=api_key, overlap_hours=24)
    later = (timezone.now() + timedelta(days=90)).strftime("%Y-%m-%d")

    response = admin_client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/change/",
        key_form(page, expires_at_0=later, expires_at_1="00:00:00", rate_limit_per_second="50"),
    )

    assert response.status_code == 200  # the form again, with the error at the expiry
    assert response.context["adminform"].form.errors["expires_at"] == [ROTATED_EXPIRY]
    assert not [str(message) for message in response.context["messages"]]
    old = ApiKey.objects.get(pk=api_key.pk)
    assert (old.expires_at, old.rate_limit_per_second) == (
        rotated.old.expires_at,
        api_key.rate_limit_per_second,
    )
    assert not AuditEntry.objects.filter(action="apikey.change").exists()


@pytest.mark.parametrize("meanwhile", ["revoke", "rotate"])
def test_a_key_revoked_or_rotated_while_its_page_is_saved_stays_so(
    admin_client, api_client, api_key, monkeypatch, meanwhile
):
    """The other write commits after the save read the key, before it wrote it."""
    page = admin_client.get(f"/pilot/partnerships/apikey/{api_key.pk}/change/")
    loaded = ApiKeyAdmin.get_object

    def get_object_then_the_other_write(admin_self, request, object_id, from_field=None):
        key = loaded(admin_self, request, object_id, from_field)
        if request.method == "POST":
            if meanwhile == "revoke":
                api_key_revoke(api_key=ApiKey.objects.get(pk=key.pk))
            else:
                api_key_rotate(api_key=ApiKey.objects.get(pk=key.pk), overlap_hours=0)
        return key

    monkeypatch.setattr(ApiKeyAdmin, "get_object", get_object_then_the_other_write)

    response = admin_client.post(
        f"/pilot/partnerships/apikey/{api_key.pk}/change/",
        key_form(page, rate_limit_per_second="50"),
    )

    assert response.status_code == 302
    key = ApiKey.objects.get(pk=api_key.pk)
    assert key.rate_limit_per_second == 50
    assert not key.is_active
    if meanwhile == "rotate":
        assert key.replaced_by is not None
    assert _status(api_client, api_key.plaintext, api_key.partnership) == (400, "invalid_token")
