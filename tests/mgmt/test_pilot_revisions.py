"""Pilot's change pages and the management API cannot overwrite each other: the page carries
the revision it loaded, and the same service refuses a stale save from either side."""

import json

import pytest

from partnerships import roles
from partnerships.pilot_revision import LOADED
from rewards.webhooks.models import WebhookEndpoint
from tests.campaigns.test_approval_pilot import pilot_as

from .conftest import operator, staff_client, url

pytestmark = pytest.mark.django_db


def form_data(page) -> dict:
    """What the change page would post back unchanged (its form and inlines' management)."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, dict | list) and name != "event_types":
            value = json.dumps(value)
        if value is not None:
            data[name] = value
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for one in (formset.management_form, *formset.forms):
            for name in one.fields:
                value = one[name].value()
                if value is not None:
                    data[one[name].html_name] = value
    return data


@pytest.fixture
def root(django_user_model, partnership):
    return operator(django_user_model, "root", roles.ADMIN, partnership, superuser=True)


def cases(partnership, trigger):
    endpoint = WebhookEndpoint.objects.create(
        partnership=partnership,
        url="https://partner.example/hooks",
        secret="whsec_x",
        event_types=["reward.issued"],
    )
    return [
        (
            partnership,
            f"/pilot/partnerships/partnership/{partnership.pk}/change/",
            url(partnership),
            "name",
        ),
        (
            trigger,
            f"/pilot/triggers/trigger/{trigger.pk}/change/",
            url(partnership, "triggers", trigger.pk),
            "description",
        ),
        (
            endpoint,
            f"/pilot/rewards/webhookendpoint/{endpoint.pk}/change/",
            url(partnership, "webhook-endpoints", endpoint.pk),
            "url",
        ),
    ]


def new_value(field: str, side: str) -> str:
    return f"https://{side}.example/hooks" if field == "url" else f"from {side}"


def test_a_pilot_page_opened_before_an_api_write_cannot_overwrite_it(root, partnership, trigger):
    api = staff_client(root, roles.ADMIN, partnership)
    pilot = pilot_as(root)
    for obj, page_url, api_url, field in cases(partnership, trigger):
        opened = pilot.get(page_url)
        assert opened.status_code == 200, page_url
        data = form_data(opened)
        assert data[LOADED] == obj.revision

        written = api.patch(
            api_url,
            {field: new_value(field, "api")},
            format="json",
            HTTP_IF_MATCH=f'"{obj.revision}"',
        )
        assert written.status_code == 200, written.json()

        stale = pilot.post(page_url, {**data, field: new_value(field, "pilot")})
        assert stale.status_code == 200, (page_url, stale.status_code)
        [error] = stale.context["adminform"].form.non_field_errors()
        assert "since you opened it" in error
        obj.refresh_from_db()
        assert getattr(obj, field) == new_value(field, "api")


def test_an_api_write_after_a_pilot_save_is_412(root, partnership, trigger):
    api = staff_client(root, roles.ADMIN, partnership)
    pilot = pilot_as(root)
    for obj, page_url, api_url, field in cases(partnership, trigger):
        etag = api.get(api_url)["ETag"]
        saved = pilot.post(
            page_url, {**form_data(pilot.get(page_url)), field: new_value(field, "pilot")}
        )
        assert saved.status_code == 302, (
            page_url,
            saved.context and saved.context["adminform"].form.errors,
        )

        refused = api.patch(
            api_url, {field: new_value(field, "api")}, format="json", HTTP_IF_MATCH=etag
        )
        assert refused.status_code == 412
        obj.refresh_from_db()
        assert getattr(obj, field) == new_value(field, "pilot")
