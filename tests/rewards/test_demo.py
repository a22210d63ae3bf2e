import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import Campaign
from rewards.models import Reward
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(tmp_path, monkeypatch):
    from rewards.management.commands import demo_setup

    monkeypatch.setattr(demo_setup, "DEMO_FILE", tmp_path / "demo.json")

    def run() -> dict:
        out = StringIO()
        call_command("demo_setup", "--json", stdout=out)
        return json.loads(out.getvalue())

    return run


def test_demo_creates_its_catalog_once_and_reuses_its_key(demo):
    first, second = demo(), demo()

    assert first["api_key"] == second["api_key"]
    assert set(Trigger.objects.values_list("name", flat=True)) == {
        "transaction_completed",
        "user_signup",
    }
    assert set(Campaign.objects.values_list("slug", "status")) == {
        ("cashback-5", "active"),
        ("welcome-100", "active"),
    }


def test_demo_request_earns_the_advertised_reward(demo, api_client, process):
    result = demo()

    response = api_client.post(
        result["url"], result["body"], format="json", HTTP_X_API_KEY=result["api_key"]
    )
    process()

    assert response.status_code == 200
    reward = Reward.objects.get()
    assert reward.amount == Decimal("2.13")  # 5% of 42.50 = 2.125, rounded half up
    assert reward.campaign.slug == "cashback-5"
    assert result["curl"].startswith("curl -sS -X POST")
