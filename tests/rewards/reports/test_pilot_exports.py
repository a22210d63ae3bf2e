"""Pilot's CSV downloads: the report permission, the user's partnerships, the rows."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.http import StreamingHttpResponse
from django.urls import reverse

from partnerships.models import PartnershipMember
from tests.factories import CampaignFactory, PartnershipFactory, TriggerFactory
from tests.rewards.reports.support import claw_back, issue

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAYS = {"from": "2026-03-10", "to": "2026-03-10"}


@pytest.fixture
def shop():
    return CampaignFactory(trigger=TriggerFactory(partnership=PartnershipFactory()))


def operator(django_user_model, *, can_report=True, member_of=()):
    user = django_user_model.objects.create_user("analyst", is_staff=True)
    if can_report:
        user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    for partnership in member_of:
        PartnershipMember.objects.create(user=user, partnership=partnership)
    return user


def download(client, name: str, **params):
    return client.get(reverse(name), params)


def rows(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_member_with_the_report_permission_downloads_the_rewards(client, django_user_model, shop):
    reward = issue(shop, at=NOON, amount="7.5")
    issue(shop, at=NOON, mode="test")
    client.force_login(operator(django_user_model, member_of=[shop.partnership]))

    response = download(
        client, "pilot-reports-rewards-csv", partnership=shop.partnership_id, **DAYS
    )

    assert response.status_code == 200
    assert response["X-Export-As-Of"]
    assert "attachment" in response["Content-Disposition"]
    listed = rows(response)
    assert [(row["reward_id"], row["amount"], row["mode"]) for row in listed] == [
        (str(reward.id), "7.50", "live")
    ]


def test_test_mode_on_request(client, django_user_model, shop):
    test = issue(shop, at=NOON, mode="test")
    client.force_login(operator(django_user_model, member_of=[shop.partnership]))

    response = download(
        client, "pilot-reports-rewards-csv", partnership=shop.partnership_id, mode="test", **DAYS
    )

    assert [row["reward_id"] for row in rows(response)] == [str(test.id)]


def test_the_reversals_download(client, django_user_model, shop):
    reward = issue(shop, at=NOON - timedelta(days=1))
    claw_back(reward, "3", at=NOON)
    client.force_login(operator(django_user_model, member_of=[shop.partnership]))

    response = download(
        client, "pilot-reports-reversals-csv", partnership=shop.partnership_id, **DAYS
    )

    assert [row["amount"] for row in rows(response)] == ["3.00"]


@pytest.mark.parametrize("name", ["pilot-reports-rewards-csv", "pilot-reports-reversals-csv"])
def test_without_the_report_permission_it_is_forbidden(client, django_user_model, shop, name):
    issue(shop, at=NOON)
    user = operator(django_user_model, can_report=False, member_of=[shop.partnership])
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    user.user_permissions.remove(Permission.objects.get(codename="view_reports"))
    client.force_login(user)

    response = download(client, name, partnership=shop.partnership_id, **DAYS)

    assert response.status_code == 403
    assert b"reward_id" not in response.content


@pytest.mark.parametrize("name", ["pilot-reports-rewards-csv", "pilot-reports-reversals-csv"])
def test_a_partnership_the_user_does_not_see_is_refused(client, django_user_model, shop, name):
    issue(shop, at=NOON)
    mine = PartnershipFactory()
    client.force_login(operator(django_user_model, member_of=[mine]))

    response = download(client, name, partnership=shop.partnership_id, **DAYS)

    assert response.status_code == 400
    assert "You cannot see that partnership" in response.content.decode()


def test_a_superuser_downloads_any_partnership(client, django_user_model, shop):
    issue(shop, at=NOON)
    client.force_login(django_user_model.objects.create_superuser("root"))

    response = download(
        client, "pilot-reports-rewards-csv", partnership=shop.partnership_id, **DAYS
    )

    assert len(rows(response)) == 1


def test_signed_out_goes_to_the_login(client, shop):
    response = download(
        client, "pilot-reports-rewards-csv", partnership=shop.partnership_id, **DAYS
    )

    assert response.status_code == 302
    assert "/pilot/login/" in response["Location"]


def test_bad_filters_are_said_in_words(client, django_user_model, shop):
    client.force_login(operator(django_user_model, member_of=[shop.partnership]))

    backwards = download(
        client,
        "pilot-reports-rewards-csv",
        partnership=shop.partnership_id,
        **{"from": "2026-03-10", "to": "2026-03-09"},
    )
    unknown = download(
        client,
        "pilot-reports-rewards-csv",
        partnership=shop.partnership_id,
        campaign=CampaignFactory(trigger=TriggerFactory()).pk,  # another partnership's
        **DAYS,
    )

    assert backwards.status_code == 400
    assert "to: The range ends before it starts" in backwards.content.decode()
    assert unknown.status_code == 400
    assert "That campaign is not in this partnership" in unknown.content.decode()


def test_the_report_page_links_the_downloads_with_its_filters(client, django_user_model, shop):
    client.force_login(operator(django_user_model, member_of=[shop.partnership]))
    query = f"partnership={shop.partnership_id}&mode=live&from=2026-03-10&to=2026-03-10"

    page = client.get(f"{reverse('pilot-reports-dashboard')}?{query}").content.decode()

    assert f"{reverse('pilot-reports-rewards-csv')}?{query}".replace("&", "&amp;") in page
    assert f"{reverse('pilot-reports-reversals-csv')}?{query}".replace("&", "&amp;") in page
