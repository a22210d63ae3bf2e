import base64
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.errors import ErrorCode
from rewards.models import Reward
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(partnership):
    return EndUserFactory(partnership=partnership, external_user_id="alice")


def issue(campaign, user, *, amount="10", issued_at=None, mode="live", status="issued"):
    event = TriggerEventFactory(trigger=campaign.trigger, end_user=user, mode=mode)
    when = issued_at or timezone.now()
    return Reward.objects.create(
        partnership=campaign.partnership,
        campaign=campaign,
        trigger_event=event,
        end_user=user,
        amount=Decimal(amount),
        unit="Points",
        mode=mode,
        status=status,
        issued_at=when,
        occurred_at=when,
        campaign_version=1,
    )


def page(client, partnership, **params):
    response = client.get(f"/partnerships/{partnership.id}/users/alice/rewards", params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_rewards_are_listed_newest_first(partner_client, partnership, trigger, user):
    campaign = CampaignFactory(trigger=trigger)
    now = timezone.now()
    old = issue(campaign, user, issued_at=now - timedelta(days=1))
    new = issue(campaign, user, issued_at=now)

    data = page(partner_client, partnership)

    assert [r["reward_id"] for r in data["rewards"]] == [str(new.id), str(old.id)]
    assert data["next_cursor"] is None


def test_pages_have_no_duplicates_or_gaps_while_new_rewards_arrive(
    partner_client, partnership, trigger, user
):
    campaign = CampaignFactory(trigger=trigger)
    start = timezone.now() - timedelta(hours=1)
    same_time = start + timedelta(minutes=5)  # a whole batch shares its issued_at
    existing = {str(issue(campaign, user, issued_at=same_time).id) for _ in range(12)}
    existing |= {
        str(issue(campaign, user, issued_at=start + timedelta(minutes=i)).id) for i in range(13)
    }

    seen, cursor = [], None
    while True:
        data = page(partner_client, partnership, limit=7, **({"cursor": cursor} if cursor else {}))
        seen += [r["reward_id"] for r in data["rewards"]]
        issue(campaign, user)  # new rewards keep arriving between pages
        cursor = data["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "reversed"}, ["r"]),
        ({"campaign": "b"}, ["b"]),
        ({"mode": "live"}, ["r", "b", "a"]),
    ],
)
def test_rewards_can_be_filtered(partner_client, partnership, trigger, user, params, expected):
    a = CampaignFactory(trigger=trigger, slug="a")
    b = CampaignFactory(trigger=trigger, slug="b")
    labels = {
        issue(a, user).id: "a",
        issue(b, user).id: "b",
        issue(a, user, status="reversed").id: "r",
        issue(a, user, mode="test").id: "t",
    }

    data = page(partner_client, partnership, **params)

    assert [labels[uuid.UUID(r["reward_id"])] for r in data["rewards"]] == expected


def test_date_range_filter(partner_client, partnership, trigger, user):
    campaign = CampaignFactory(trigger=trigger)
    now = timezone.now()
    issue(campaign, user, issued_at=now - timedelta(days=10))
    recent = issue(campaign, user, issued_at=now - timedelta(days=1))

    data = page(partner_client, partnership, issued_after=(now - timedelta(days=2)).isoformat())

    assert [r["reward_id"] for r in data["rewards"]] == [str(recent.id)]


def test_bad_cursor_and_limit_are_422(partner_client, partnership, user):
    url = f"/partnerships/{partnership.id}/users/alice/rewards"

    bad_cursor = partner_client.get(url, {"cursor": "garbage"})
    bad_limit = partner_client.get(url, {"limit": 0})

    assert bad_cursor.status_code == bad_limit.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
    assert bad_limit.json()["errors"][0]["field"] == "limit"


def test_balance_is_earned_reversed_and_net_per_unit(partner_client, partnership, trigger, user):
    campaign = CampaignFactory(trigger=trigger)
    issue(campaign, user, amount="10")
    partly = issue(campaign, user, amount="5")
    partly.reversed_amount = Decimal("2")
    partly.save()
    issue(campaign, user, amount="99", mode="test")

    response = partner_client.get(f"/partnerships/{partnership.id}/users/alice/balance")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["external_user_id"] == "alice"
    assert data["balances"] == [
        {"unit": "Points", "earned": "15.00", "reversed": "2.00", "net": "13.00"}
    ]


def test_users_of_another_partnership_are_invisible(partner_client, partnership):
    EndUserFactory(external_user_id="bob")  # another partnership's user

    for path in ("rewards", "balance"):
        response = partner_client.get(f"/partnerships/{partnership.id}/users/bob/{path}")
        assert response.status_code == 404
        assert response.json()["code"] == ErrorCode.USER_DOES_NOT_EXIST


@pytest.mark.parametrize(
    "decoded",
    [
        b'["2024-01-01T00:00:00+00:00", 1]',  # not a reward id
        b'[1, "2f7dabed-1e5f-4112-9219-44e4e42bdddc"]',  # not a time
        b'["2024-01-01T00:00:00", "2f7dabed-1e5f-4112-9219-44e4e42bdddc"]',  # no time zone
        b'{"a": 1}',
    ],
)
def test_a_tampered_cursor_is_a_422_not_a_500(partner_client, partnership, user, decoded):
    cursor = base64.urlsafe_b64encode(decoded).decode().rstrip("=")

    response = partner_client.get(
        f"/partnerships/{partnership.id}/users/{user.external_user_id}/rewards", {"cursor": cursor}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
