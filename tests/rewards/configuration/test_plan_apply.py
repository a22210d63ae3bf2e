import pytest
from django.core.exceptions import ValidationError

from campaigns.lifecycle import campaign_approve
from campaigns.models import Campaign, CampaignVersion
from campaigns.services import campaign_save
from config.errors import ApplicationError, ErrorCode
from partnerships.models import AuditEntry
from rewards.configuration.plan import Action, Kind, Outcome
from rewards.configuration.state import configuration_state
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import CampaignFactory, RewardFactory, TriggerEventFactory
from triggers.models import Trigger

from .support import apply, campaign, changes, exported, plan, text_of


def _edited(partnership) -> dict:
    """The configuration with one of each kind of change."""
    document = exported(partnership)
    campaign(document, "cashback")["budget"] = 5000  # raises a limit: approval
    campaign(document, "cashback")["description"] = "Summer"  # describes: at once
    campaign(document, "welcome")["reward_value"] = "150.0"  # a draft: in place
    document["triggers"].append({"name": "referral", "context_schema": {"type": "object"}})
    document["webhooks"] = [w for w in document["webhooks"] if w["modes"] == "live"]
    document["settings"] = {"time_zone": "Europe/Paris"}
    return document


def test_plan_shows_each_object_created_changed_or_deleted_with_fields_before_and_after(
    configured,
):
    result = plan(configured, _edited(configured))

    assert changes(result) == [
        (Kind.SETTINGS, "settings", Action.CHANGE, Outcome.APPLIED),
        (Kind.TRIGGER, "referral", Action.CREATE, Outcome.CREATED),
        (Kind.CAMPAIGN, "cashback", Action.CHANGE, Outcome.AWAITS_APPROVAL),
        (Kind.CAMPAIGN, "welcome", Action.CHANGE, Outcome.DRAFT),
        (
            Kind.WEBHOOK,
            "https://hooks.example.com/rewards (test)",
            Action.DELETE,
            Outcome.DELETED,
        ),
    ]
    by_key = {c.key: c for c in result.changes}
    assert by_key["settings"].fields == {"time_zone": ["UTC", "Europe/Paris"]}
    assert by_key["cashback"].fields == {
        "description": ["", "Summer"],
        "budget": ["1000", "5000"],
    }
    assert by_key["cashback"].status == "active"
    assert by_key["welcome"].fields == {"reward_value": ["100", "150"]}
    assert result.approvals == ["cashback"]
    assert result.as_dict()["summary"] == {"create": 1, "change": 3, "delete": 1}


def test_plan_writes_nothing(configured):
    before = text_of(configured)

    plan(configured, _edited(configured))

    assert text_of(configured) == before
    assert not AuditEntry.objects.exists()


def test_apply_performs_the_plan_and_records_the_actor(configured, operator):
    result = apply(configured, _edited(configured), operator)

    assert result.plan.approvals == ["cashback"]
    configured.refresh_from_db()
    assert configured.time_zone == "Europe/Paris"
    assert Trigger.objects.filter(partnership=configured, name="referral").exists()
    assert WebhookEndpoint.objects.filter(partnership=configured).get().modes == "live"
    welcome = Campaign.objects.get(slug="welcome")
    assert welcome.reward_value == 150
    assert welcome.versions.first().author == operator
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"configuration.apply", "partnership.change", "trigger.create"} <= actions
    assert {"webhook.delete", "campaign.submit"} <= actions
    assert AuditEntry.objects.get(action="configuration.apply").actor == operator
    assert result.fingerprint == configuration_state(partnership=configured).fingerprint


def test_rule_reward_and_limit_changes_of_a_live_campaign_await_approval(
    configured, manager, approver
):
    document = exported(configured)
    campaign(document, "cashback")["budget"] = "5000"
    campaign(document, "cashback")["condition"] = "context.amount >= 50.0"
    campaign(document, "cashback")["name"] = "Cashback"

    apply(configured, document, manager)

    live = Campaign.objects.get(slug="cashback")
    assert (live.budget, live.condition, live.name) == (
        1000,
        "context.amount >= 20.0 && facts.purchases_30d >= 1",
        "5% cashback",
    )
    pending = live.versions.get(state=CampaignVersion.State.PROPOSED)
    assert pending.author == manager
    assert set(pending.changes) == {"budget", "condition", "name"}
    campaign_approve(campaign=live, approver=approver, shown_id=pending.pk)
    live.refresh_from_db()
    assert (live.budget, live.condition, live.name) == (5000, "context.amount >= 50.0", "Cashback")


def test_a_description_or_a_lower_cap_is_applied_at_once(configured, manager):
    document = exported(configured)
    campaign(document, "cashback")["budget"] = "500"
    campaign(document, "cashback")["description"] = "Lower"

    result = apply(configured, document, manager)

    assert changes(result.plan)[0][3] == Outcome.APPLIED
    live = Campaign.objects.get(slug="cashback")
    assert (live.budget, live.description) == (500, "Lower")
    assert not live.versions.filter(state=CampaignVersion.State.PROPOSED).exists()


def test_one_bad_object_applies_nothing(configured, operator):
    before, versions, audits = text_of(configured), CampaignVersion.objects.count(), 0
    document = _edited(configured)
    campaign(document, "welcome")["condition"] = "context.nope > 1"
    document["webhooks"].append({"url": "not a url", "modes": "test", "events": ["reward.issued"]})

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator)

    assert raised.value.status == 422
    assert raised.value.code == ErrorCode.VALIDATION_ERROR
    fields = {error["field"] for error in raised.value.errors}
    assert fields == {"campaigns[welcome].condition", "webhooks[not a url (test)].url"}
    assert text_of(configured) == before
    assert CampaignVersion.objects.count() == versions
    assert AuditEntry.objects.count() == audits
    assert not Trigger.objects.filter(name="referral").exists()


def test_the_same_errors_as_pilot_at_the_objects_field(configured, operator):
    document = exported(configured)
    campaign(document, "cashback")["reward_min"] = "20"  # above its maximum, 10.5
    campaign(document, "cashback")["budget"] = "-1"
    campaign(document, "cashback")["facts"] = [{"name": "x", "aggregate": "avg", "window_days": 3}]
    probe = Campaign.objects.get(slug="cashback")
    probe.reward_min, probe.budget = 20, -1
    probe.facts = [{"name": "x", "aggregate": "avg", "window_days": 3}]
    with pytest.raises(ValidationError) as pilot:
        probe.full_clean()

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator)

    errors = {e["field"]: e["message"] for e in raised.value.errors}
    assert errors == {
        f"campaigns[cashback].{field}": " ".join(messages)
        for field, messages in pilot.value.message_dict.items()
    }


def test_apply_refuses_when_the_configuration_changed_since_the_plan(configured, operator):
    document = exported(configured)
    campaign(document, "welcome")["name"] = "Mine"
    fingerprint = plan(configured, document).fingerprint
    welcome = Campaign.objects.get(slug="welcome")
    welcome.name = "Theirs"
    campaign_save(campaign=welcome)  # someone else's edit, in Pilot

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator, expect=fingerprint)

    assert (raised.value.status, raised.value.code) == (412, ErrorCode.CONFIGURATION_CHANGED)
    assert Campaign.objects.get(slug="welcome").name == "Theirs"
    apply(configured, document, operator, force=True)
    assert Campaign.objects.get(slug="welcome").name == "Mine"


def test_a_change_awaiting_approval_changes_the_fingerprint(configured, manager, operator):
    document = exported(configured)
    fingerprint = plan(configured, document).fingerprint
    campaign(document, "cashback")["budget"] = "9000"
    apply(configured, document, manager)

    with pytest.raises(ApplicationError) as raised:
        apply(configured, exported(configured), operator, expect=fingerprint)

    assert raised.value.code == ErrorCode.CONFIGURATION_CHANGED


def test_apply_needs_the_plans_fingerprint_or_force(configured, operator):
    with pytest.raises(ApplicationError) as raised:
        apply(configured, exported(configured), operator, expect=None)

    assert (raised.value.status, raised.value.code) == (428, ErrorCode.FINGERPRINT_REQUIRED)


def test_an_operator_without_the_permission_is_refused_and_nothing_applied(configured, manager):
    document = exported(configured)
    document["webhooks"] = []

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, manager)

    assert (raised.value.status, raised.value.code) == (403, ErrorCode.PERMISSION_DENIED)
    assert "rewards.delete_webhookendpoint" in raised.value.message
    assert WebhookEndpoint.objects.filter(partnership=configured).count() == 2


def test_an_operator_of_another_partnership_is_refused(configured, django_user_model):
    from tests.factories import PartnershipFactory

    from .conftest import MANAGER, member

    outsider = member(django_user_model, PartnershipFactory(), "outsider", MANAGER)

    with pytest.raises(ApplicationError) as raised:
        apply(configured, exported(configured), outsider)

    assert raised.value.code == ErrorCode.PERMISSION_DENIED


def test_deleting_what_rewards_and_events_reference_ends_and_archives(configured, operator):
    cashback = Campaign.objects.get(slug="cashback")
    RewardFactory(campaign=cashback)
    document = exported(configured)
    document["campaigns"] = [c for c in document["campaigns"] if c["slug"] != "cashback"]
    document["triggers"] = [t for t in document["triggers"] if t["name"] == "signup"]

    result = apply(configured, document, operator)

    assert changes(result.plan) == [
        (Kind.TRIGGER, "transaction_completed", Action.DELETE, Outcome.ARCHIVED),
        (Kind.CAMPAIGN, "cashback", Action.DELETE, Outcome.ENDED),
    ]
    cashback.refresh_from_db()
    assert cashback.status == Campaign.Status.ENDED
    assert Trigger.objects.get(name="transaction_completed").status == "archived"
    assert plan(configured, document).changes == ()  # retired: nothing more to do
    assert "cashback" not in text_of(configured)


def test_deleting_what_nothing_references_deletes_it(configured, operator):
    document = exported(configured)
    document["campaigns"] = [c for c in document["campaigns"] if c["slug"] != "welcome"]
    document["triggers"] = [t for t in document["triggers"] if t["name"] != "signup"]

    result = apply(configured, document, operator)

    assert changes(result.plan) == [
        (Kind.TRIGGER, "signup", Action.DELETE, Outcome.DELETED),
        (Kind.CAMPAIGN, "welcome", Action.DELETE, Outcome.DELETED),
    ]
    assert not Campaign.objects.filter(slug="welcome").exists()
    assert not Trigger.objects.filter(name="signup").exists()


def test_a_trigger_that_events_reference_is_archived_not_deleted(configured, operator):
    TriggerEventFactory(trigger=Trigger.objects.get(name="signup"))
    document = exported(configured)
    document["campaigns"] = [c for c in document["campaigns"] if c["slug"] != "welcome"]
    document["triggers"] = [t for t in document["triggers"] if t["name"] != "signup"]

    apply(configured, document, operator)

    assert Trigger.objects.get(name="signup").status == "archived"


def test_a_trigger_change_that_would_stop_a_live_campaign_is_refused_as_in_pilot(
    configured, operator
):
    document = exported(configured)
    purchase = next(t for t in document["triggers"] if t["name"] == "transaction_completed")
    purchase["context_schema"]["properties"].pop("amount")
    purchase["context_schema"]["required"] = ["currency"]

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator)

    [error] = raised.value.errors
    assert error["field"] == "triggers[transaction_completed].context_schema"
    assert "would stop the active campaign 5% cashback (cashback)" in error["message"]


def test_an_ended_campaigns_slug_cannot_be_reused(configured, operator):
    Campaign.objects.filter(slug="cashback").update(status=Campaign.Status.ENDED)
    document = exported(configured)
    document["campaigns"].append({**campaign(exported(configured), "welcome"), "slug": "cashback"})

    with pytest.raises(ApplicationError) as raised:
        plan(configured, document)

    assert raised.value.errors[0]["field"] == "campaigns[cashback].slug"
    assert raised.value.errors[0]["code"] == "campaign_ended"


def test_a_live_endpoint_is_never_turned_into_a_test_one(configured, operator):
    live = WebhookEndpoint.objects.get(partnership=configured, modes="live")
    WebhookDelivery.objects.create(
        endpoint=live,
        event_type="reward.issued",
        mode="live",
        payload={},
        next_attempt_at=live.created_at,
        created_at=live.created_at,
    )
    document = exported(configured)
    for endpoint in document["webhooks"]:
        endpoint["modes"] = "test"
    document["webhooks"][0]["url"] = "https://other.example.com/hooks"

    result = apply(configured, document, operator)

    assert changes(result.plan) == [
        (
            Kind.WEBHOOK,
            "https://hooks.example.com/rewards (live)",
            Action.DELETE,
            Outcome.DEACTIVATED,
        ),
        (Kind.WEBHOOK, "https://other.example.com/hooks (test)", Action.CREATE, Outcome.CREATED),
    ]
    live.refresh_from_db()
    assert (live.modes, live.active) == ("live", False)  # kept, with its live deliveries
    assert set(
        WebhookEndpoint.objects.filter(partnership=configured, active=True).values_list(
            "modes", flat=True
        )
    ) == {"test"}


def test_marking_a_trigger_client_sendable_needs_its_campaigns_bounded(configured, operator):
    document = exported(configured)
    purchase = next(t for t in document["triggers"] if t["name"] == "transaction_completed")
    purchase["client_sendable"] = True

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator)

    [error] = raised.value.errors
    assert error["field"] == "triggers[transaction_completed].client_sendable"
    assert "The campaign 5% cashback (cashback) reads it" in error["message"]
    assert not Trigger.objects.get(name="transaction_completed").client_sendable


def test_a_user_attribute_schema_that_would_stop_a_live_campaign_is_refused(configured, operator):
    configured.user_attribute_schema = {
        "type": "object",
        "properties": {"tier": {"type": "string"}},
    }
    configured.save()
    CampaignFactory(
        trigger=Trigger.objects.get(name="signup"), slug="gold", condition='user.tier == "gold"'
    )
    document = exported(configured)
    document["settings"]["user_attribute_schema"] = {
        "type": "object",
        "properties": {"tier": {"type": "integer"}},
    }

    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator)

    [error] = raised.value.errors
    assert error["field"] == "settings.user_attribute_schema"
    assert "would stop the active campaign" in error["message"]
    document["settings"]["user_attribute_schema"] = {"type": "nonsense"}
    with pytest.raises(ApplicationError) as raised:
        apply(configured, document, operator)
    assert raised.value.errors[0]["field"] == "settings.user_attribute_schema"


def test_origins_schema_and_client_sendable_round_trip(configured, operator):
    from tests.factories import PartnershipFactory

    document = exported(configured)
    document["settings"]["allowed_origins"] = ["https://app.example.com"]
    document["settings"]["user_attribute_schema"] = {
        "type": "object",
        "properties": {"tier": {"type": "string"}},
    }
    campaign(document, "welcome")["max_amount_per_user"] = "100"
    next(t for t in document["triggers"] if t["name"] == "signup")["client_sendable"] = True
    empty = PartnershipFactory()

    apply(empty, document, operator)

    assert exported(empty) == document
    assert Trigger.objects.get(partnership=empty, name="signup").client_sendable


def test_an_apply_moves_the_revisions_the_management_api_serves(configured, operator):
    """An API client holding an ETag from before an apply gets 412, not a silent overwrite."""
    trigger = Trigger.objects.get(partnership=configured, name="transaction_completed")
    endpoint = WebhookEndpoint.objects.filter(partnership=configured).first()
    before = (configured.revision, trigger.revision, endpoint.revision)
    document = exported(configured)
    document["settings"] = {"time_zone": "Europe/Paris"}
    for entry in document["triggers"]:
        entry["description"] = f"{entry['name']}, described"
    for webhook in document["webhooks"]:
        webhook["active"] = False
    apply(configured, document, operator)

    configured.refresh_from_db()
    trigger.refresh_from_db()
    endpoint.refresh_from_db()
    after = (configured.revision, trigger.revision, endpoint.revision)
    assert all(later > earlier for earlier, later in zip(before, after, strict=True))
