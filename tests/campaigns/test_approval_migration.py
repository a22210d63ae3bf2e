"""Migration 0003 completes the versions saved before approval existed."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from campaigns.models import CampaignVersion
from tests.factories import TriggerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE = [("campaigns", "0002_approve_permission")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def from_before():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        yield migrate(BEFORE)
    finally:
        migrate(latest)


def old_snapshot(condition: str, reward_value: str) -> dict:
    """What ``campaign_snapshot`` kept before: the rule and the reward only."""
    return {
        "condition": condition,
        "facts": [],
        "reward_type": "fixed",
        "reward_value": reward_value,
        "reward_field": "",
        "reward_expression": "",
        "reward_min": None,
        "reward_max": None,
        "rounding": "ROUND_HALF_UP",
    }


def test_old_snapshots_get_limits_schedule_and_diffs(from_before):
    trigger = TriggerFactory()
    OldCampaign = from_before.get_model("campaigns", "Campaign")
    OldVersion = from_before.get_model("campaigns", "CampaignVersion")
    common = {"partnership_id": trigger.partnership_id, "trigger_id": trigger.id}
    live = OldCampaign.objects.create(
        **common,
        name="Live",
        slug="live",
        status="active",
        condition="context.amount >= 30.0",
        reward_value=Decimal("12.5"),
        budget=Decimal("100"),
        version=2,
    )
    OldVersion.objects.create(
        campaign=live, version=1, snapshot=old_snapshot("context.amount >= 20.0", "10.000000")
    )
    OldVersion.objects.create(
        campaign=live, version=2, snapshot=old_snapshot("context.amount >= 30.0", "12.500000")
    )
    draft = OldCampaign.objects.create(**common, name="Draft", slug="draft", status="draft")
    OldVersion.objects.create(campaign=draft, version=1, snapshot=old_snapshot("", "5"))

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    first, second = CampaignVersion.objects.filter(campaign_id=live.id).order_by("version")
    assert "budget" not in first.snapshot  # unknown then: not invented
    assert first.snapshot["reward_value"] == "10"
    assert (second.snapshot["budget"], second.snapshot["priority"]) == ("100", 0)
    assert second.snapshot["starts_at"] is None and second.snapshot["exclusive"] is False
    assert second.changes == {
        "condition": ["context.amount >= 20.0", "context.amount >= 30.0"],
        "reward_value": ["10", "12.5"],
    }
    assert {first.state, second.state} == {"approved"}
    assert CampaignVersion.objects.get(campaign_id=draft.id).state == "draft"
