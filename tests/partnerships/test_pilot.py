import re

import pytest

from partnerships.keys import matches
from partnerships.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def pilot(admin_client):
    return admin_client


def test_pilot_is_branded(pilot):
    response = pilot.get("/pilot/")

    assert response.status_code == 200
    assert b"Pilot" in response.content


def test_creating_a_key_in_pilot_shows_the_plaintext_once(pilot, partnership):
    response = pilot.post(
        "/pilot/partnerships/apikey/add/",
        {
            "partnership": partnership.id,
            "name": "ops",
            "mode": "test",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )

    assert response.status_code == 200
    shown = re.findall(r"pk_test_[a-z0-9]{8}\.[A-Za-z0-9_\-]+", response.content.decode())
    key = ApiKey.objects.get(name="ops")
    assert len(set(shown)) == 1 and matches(shown[0], key.hashed_key)

    detail = pilot.get(f"/pilot/partnerships/apikey/{key.pk}/change/").content.decode()
    assert key.prefix in detail and shown[0] not in detail


def test_revoke_action_in_pilot(pilot, api_key):
    pilot.post(
        "/pilot/partnerships/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


@pytest.mark.parametrize("path", ["partner", "partnership", "apikey", "enduser"])
def test_pilot_lists_load(pilot, api_key, path):
    assert pilot.get(f"/pilot/partnerships/{path}/").status_code == 200


def test_an_end_users_external_id_cannot_be_changed_in_pilot(pilot, partnership):
    from tests.factories import EndUserFactory

    user = EndUserFactory(partnership=partnership, external_user_id="alice")
    url = f"/pilot/partnerships/enduser/{user.pk}/change/"

    page = pilot.get(url)
    pilot.post(
        url,
        {"partnership": partnership.pk, "external_user_id": "mallory", "attributes": "{}"},
    )

    assert page.status_code == 200
    assert b'name="external_user_id"' not in page.content
    user.refresh_from_db()
    assert user.external_user_id == "alice"


def test_a_viewer_is_offered_no_revoke_and_cannot_post_one(pilot_viewer, api_key):
    listed = pilot_viewer.get("/pilot/partnerships/apikey/")
    pilot_viewer.post(
        "/pilot/partnerships/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    assert listed.status_code == 200
    assert 'value="revoke"' not in listed.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
