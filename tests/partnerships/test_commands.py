import json
import uuid

import pytest
from django.core.management import CommandError, call_command

from partnerships.keys import matches
from partnerships.models import ApiKey, Partnership

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_partnership_prints_id_and_a_working_key(api_client):
    result = run("create_partnership", "Acme Rewards", "--partner", "Acme Bank")

    partnership = Partnership.objects.get(pk=result["partnership_id"])
    assert partnership.partner.name == "Acme Bank"
    key = partnership.api_keys.get()
    assert matches(result["api_key"], key.hashed_key)
    response = api_client.get(f"/partnerships/{partnership.id}", HTTP_X_API_KEY=result["api_key"])
    assert response.status_code == 200


def test_create_api_key_makes_test_keys_that_expire(partnership):
    result = run("create_api_key", str(partnership.id), "--test", "--expires-in", "7")

    key = ApiKey.objects.get(prefix=result["prefix"])
    assert key.mode == "test" and result["api_key"].startswith("pk_test_")
    assert key.expires_at is not None


def test_create_api_key_for_unknown_partnership_fails_clearly():
    with pytest.raises(CommandError, match="No partnership"):
        run("create_api_key", str(uuid.uuid4()))


def test_revoke_api_key_by_prefix(api_client, api_key):
    result = run("revoke_api_key", api_key.prefix)

    assert result["prefix"] == api_key.prefix
    response = api_client.get(
        f"/partnerships/{api_key.partnership_id}", HTTP_X_API_KEY=api_key.plaintext
    )
    assert response.status_code == 400


def test_revoke_unknown_prefix_fails_clearly():
    with pytest.raises(CommandError, match="No API key"):
        run("revoke_api_key", "pk_live_00000000")
