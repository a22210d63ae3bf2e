"""The rule language at save time: what does not compile or type-check cannot be saved."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from tests.factories import CampaignFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def save_errors(trigger, **fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        CampaignFactory(trigger=trigger, **fields)
    return raised.value.message_dict


def test_valid_condition_is_saved(trigger):
    campaign = CampaignFactory(
        trigger=trigger, condition='context.amount >= 20.0 && context.currency == "USD"'
    )

    assert Campaign.objects.get(pk=campaign.pk).version == 1


def test_syntax_error_names_line_and_column(trigger):
    errors = save_errors(trigger, condition="context.amount >= ")

    assert errors["condition"][0].startswith("line 1, column 19: Syntax error")


def test_type_error_names_the_position_and_hints_at_doubles(trigger):
    errors = save_errors(trigger, condition="context.amount >= 20")

    message = errors["condition"][0]
    assert message.startswith("line 1, column 16: found no matching overload")
    assert "write 20.0" in message


def test_comparing_a_string_field_with_a_number_is_refused(trigger):
    errors = save_errors(trigger, condition="context.currency > 3.0")

    assert "column" in errors["condition"][0]


def test_unknown_context_field_is_refused(trigger):
    errors = save_errors(trigger, condition='context.mcc == "5411"')

    assert "undeclared reference to 'context.mcc'" in errors["condition"][0]


def test_condition_must_be_a_bool(trigger):
    errors = save_errors(trigger, condition="context.amount * 2.0")

    assert errors["condition"] == ["Must evaluate to bool, not double"]


def test_empty_condition_is_always_true(trigger):
    campaign = CampaignFactory(trigger=trigger, condition="   ")

    assert campaign.pk


def test_over_long_expressions_are_refused(trigger):
    errors = save_errors(trigger, condition=" || ".join(["true"] * 600))

    assert "Longer than" in errors["condition"][0]


def test_reward_expression_must_be_numeric(trigger):
    errors = save_errors(
        trigger, reward_type="expression", reward_value=None, reward_expression="context.currency"
    )

    assert errors["reward_expression"] == ["Must evaluate to double or int, not string"]


def test_percentage_needs_a_numeric_context_field(trigger):
    errors = save_errors(
        trigger, reward_type="percentage", reward_value=Decimal("5"), reward_field="currency"
    )

    assert "reward_field" in errors


def test_fixed_reward_needs_a_positive_amount(trigger):
    assert "reward_value" in save_errors(trigger, reward_value=Decimal("0"))


def test_min_above_max_is_refused(trigger):
    errors = save_errors(trigger, reward_min=Decimal("5"), reward_max=Decimal("1"))

    assert "reward_max" in errors


def test_period_cap_needs_a_period(trigger):
    assert "period" in save_errors(trigger, max_rewards_per_user_per_period=1)


@pytest.mark.parametrize(
    ("facts", "fragment"),
    [
        ({"name": "n"}, "A list of facts"),
        ([{"name": "Bad Name", "aggregate": "count", "window_days": 3}], "unique name"),
        ([{"name": "n", "aggregate": "avg", "window_days": 3}], '"aggregate"'),
        ([{"name": "n", "aggregate": "count", "window_days": 0}], '"window_days"'),
        ([{"name": "n", "aggregate": "sum", "field": "currency", "window_days": 3}], '"field"'),
        ([{"name": "n", "aggregate": "count", "window_days": 3, "trigger": "nope"}], "no trigger"),
        ([{"name": "n", "aggregate": "count", "window_days": 3, "extra": 1}], "unknown keys"),
        ([{"name": "n", "aggregate": "count", "window_days": 3, "trigger": ["x"]}], '"trigger"'),
        ([{"name": "n", "aggregate": "count", "window_days": 3, "trigger": {"a": 1}}], '"trigger"'),
    ],
)
def test_invalid_facts_are_refused(trigger, facts, fragment):
    errors = save_errors(trigger, facts=facts)

    assert fragment in errors["facts"][0]


def test_fact_types_are_checked_in_conditions(trigger):
    facts = [{"name": "spend", "aggregate": "sum", "field": "amount", "window_days": 7}]

    errors = save_errors(trigger, facts=facts, condition='facts.spend == "a lot"')

    assert "found no matching overload" in errors["condition"][0]


def test_facts_can_count_another_trigger(trigger):
    signup = TriggerFactory(partnership=trigger.partnership, name="user_signup")
    facts = [{"name": "signups", "aggregate": "count", "window_days": 30, "trigger": signup.name}]

    campaign = CampaignFactory(trigger=trigger, facts=facts, condition="facts.signups > 0")

    assert campaign.pk


def test_trigger_of_another_partnership_is_refused(trigger):
    stranger = TriggerFactory()

    with pytest.raises(ValidationError) as raised:
        CampaignFactory(trigger=stranger, partnership=trigger.partnership)

    assert "trigger" in raised.value.message_dict


def test_a_change_bumps_the_version_and_keeps_the_old_snapshot(trigger):
    from campaigns.services import campaign_save

    campaign = CampaignFactory(trigger=trigger, condition="context.amount >= 20.0")
    campaign.condition = "context.amount >= 30.0"
    campaign_save(campaign=campaign)

    snapshots = dict(campaign.versions.values_list("version", "snapshot"))
    assert campaign.version == 2
    assert snapshots[1]["condition"] == "context.amount >= 20.0"
    assert snapshots[2]["condition"] == "context.amount >= 30.0"


def test_pilot_shows_the_compile_error_on_the_field(admin_client, trigger):
    response = admin_client.post(
        "/pilot/campaigns/campaign/add/",
        {
            "partnership": trigger.partnership_id,
            "trigger": trigger.id,
            "name": "Cashback",
            "slug": "cashback",
            "status": "active",
            "priority": 0,
            "condition": "context.amount >",
            "facts": "[]",
            "reward_type": "fixed",
            "reward_value": "5",
            "rounding": "ROUND_HALF_UP",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
            "counters-TOTAL_FORMS": 0,
            "counters-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    assert "line 1, column" in str(response.context["adminform"].form.errors["condition"])
    assert not Campaign.objects.exists()


def test_pilot_saves_a_valid_campaign_with_its_first_version(admin_client, trigger):
    response = admin_client.post(
        "/pilot/campaigns/campaign/add/",
        {
            "partnership": trigger.partnership_id,
            "trigger": trigger.id,
            "name": "Cashback",
            "slug": "cashback",
            "status": "active",
            "priority": 0,
            "condition": "context.amount >= 20.0",
            "facts": "[]",
            "reward_type": "fixed",
            "reward_value": "5",
            "rounding": "ROUND_HALF_UP",
            "budget": "100",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
            "counters-TOTAL_FORMS": 0,
            "counters-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302, response.content[:2000]
    campaign = Campaign.objects.get()
    assert campaign.versions.count() == 1
    assert admin_client.get("/pilot/campaigns/campaign/").status_code == 200


def test_pilot_lists_an_active_campaign_with_a_future_start_as_scheduled(admin_client, trigger):
    from datetime import timedelta

    from django.utils import timezone

    CampaignFactory(trigger=trigger, starts_at=timezone.now() + timedelta(days=3))

    page = admin_client.get("/pilot/campaigns/campaign/").content.decode()

    assert "scheduled" in page
