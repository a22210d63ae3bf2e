"""An operator sets how late a partnership's events may arrive; ingest holds to it at once."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from config.errors import ErrorCode
from partnerships.pilot_revision import LOADED

pytestmark = pytest.mark.django_db


def change_form(partnership, **fields) -> dict:
    return {
        "partner": partnership.partner_id,
        "name": partnership.name,
        "status": partnership.status,
        "reward_unit": partnership.reward_unit,
        "reward_decimal_places": partnership.reward_decimal_places,
        "time_zone": partnership.time_zone,
        "allowed_cidrs": "",
        "max_event_lateness_days": partnership.max_event_lateness_days or "",
        LOADED: partnership.revision,
        "api_keys-TOTAL_FORMS": "1",
        "api_keys-INITIAL_FORMS": "1",
        "api_keys-0-id": partnership.api_keys.get().pk,
        "api_keys-0-partnership": partnership.pk,
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        **fields,
    }


def test_the_lateness_set_in_pilot_refuses_older_events(admin_client, partner_client, trigger):
    partnership = trigger.partnership
    page = admin_client.get(f"/pilot/partnerships/partnership/{partnership.pk}/change/")
    assert b'name="max_event_lateness_days"' in page.content

    saved = admin_client.post(
        f"/pilot/partnerships/partnership/{partnership.pk}/change/",
        change_form(partnership, max_event_lateness_days="2"),
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]

    body = {
        "trigger_name": trigger.name,
        "external_user_id": "u",
        "transaction_context": {"amount": 1, "currency": "USD"},
        "occurred_at": (timezone.now() - timedelta(days=3)).isoformat(),
    }
    response = partner_client.post(
        f"/partnerships/{partnership.pk}/triggers",
        orjson.dumps(body),
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.json()["code"] == ErrorCode.EVENT_TOO_LATE
