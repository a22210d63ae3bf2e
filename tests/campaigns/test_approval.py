"""Approval of campaigns and their changes: four eyes, nothing live changes before approval,
and every version keeps who, when and what."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.lifecycle import (
    FOUR_EYES,
    ChangeOutcome,
    LifecycleRefused,
    campaign_approve,
    campaign_change,
    campaign_end,
    campaign_pause,
    campaign_reject,
    campaign_resume,
    campaign_submit,
)
from campaigns.models import Campaign, CampaignVersion
from campaigns.selectors import campaign_pending_change
from campaigns.services import campaign_save, campaigns_end_expired
from partnerships.models import AuditEntry
from rewards.models import Reward
from tests.factories import TriggerEventFactory
from tests.rewards.conftest import decisions, process_batch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_retry_delay(settings):
    settings.EVENT_RETRY_DELAY_SECONDS = 0


def shown(campaign: Campaign) -> int | None:
    """The pending version's id, as Pilot's confirmation page carries it to Approve."""
    pending = campaign_pending_change(campaign=campaign)
    return pending and pending.pk


def process() -> None:
    while process_batch():
        pass


def edited(campaign: Campaign, **fields) -> Campaign:
    """A copy of the campaign as the operator's form holds it after their edit."""
    copy = Campaign.objects.get(pk=campaign.pk)
    for name, value in fields.items():
        setattr(copy, name, value)
    return copy


def draft(trigger, author) -> Campaign:
    return campaign_save(
        campaign=Campaign(
            partnership=trigger.partnership,
            trigger=trigger,
            name="Welcome",
            slug="welcome",
            reward_value=Decimal("5"),
        ),
        author=author,
    )


def test_a_campaign_manager_cannot_approve_their_own_campaign(trigger, manager):
    campaign = campaign_submit(campaign=draft(trigger, manager), actor=manager)

    with pytest.raises(LifecycleRefused) as refused:
        campaign_approve(campaign=campaign, approver=manager, shown_id=shown(campaign))

    assert "approve_campaign" in refused.value.message
    campaign.refresh_from_db()
    assert campaign.status == "submitted"


def test_an_approver_cannot_approve_a_change_they_wrote_four_eyes(
    live_campaign, approver, second_approver
):
    campaign_change(campaign=edited(live_campaign, reward_value=Decimal("20")), author=approver)

    with pytest.raises(LifecycleRefused) as refused:
        campaign_approve(campaign=live_campaign, approver=approver, shown_id=shown(live_campaign))
    assert refused.value.message == FOUR_EYES

    version = campaign_approve(
        campaign=live_campaign, approver=second_approver, shown_id=shown(live_campaign)
    )
    assert version.approver == second_approver


def test_whoever_edited_a_draft_cannot_approve_it_even_if_someone_else_submitted(
    trigger, manager, approver, second_approver
):
    campaign = draft(trigger, manager)
    campaign_change(campaign=edited(campaign, reward_value=Decimal("6")), author=approver)
    campaign_submit(campaign=campaign, actor=manager)

    with pytest.raises(LifecycleRefused) as refused:
        campaign_approve(campaign=campaign, approver=approver, shown_id=shown(campaign))
    assert refused.value.message == FOUR_EYES

    campaign_approve(campaign=campaign, approver=second_approver, shown_id=shown(campaign))
    assert Campaign.objects.get(pk=campaign.pk).status == "active"


def test_with_four_eyes_off_an_approver_may_approve_their_own_change(
    settings, live_campaign, approver
):
    settings.CAMPAIGN_APPROVAL_FOUR_EYES = False
    campaign_change(campaign=edited(live_campaign, reward_value=Decimal("20")), author=approver)

    campaign_approve(campaign=live_campaign, approver=approver, shown_id=shown(live_campaign))

    assert Campaign.objects.get(pk=live_campaign.pk).reward_value == Decimal("20")


def test_submitted_then_approved_by_someone_else_goes_live(trigger, manager, approver):
    campaign = campaign_submit(campaign=draft(trigger, manager), actor=manager)
    event = TriggerEventFactory(trigger=trigger)
    process()
    assert decisions(event) == {}  # submitted is not live

    campaign_approve(campaign=campaign, approver=approver, shown_id=shown(campaign))
    again = TriggerEventFactory(trigger=trigger)
    process()

    campaign.refresh_from_db()
    assert campaign.status == "active"
    assert decisions(again) == {"welcome": "rewarded"}
    version = campaign.versions.get(version=campaign.version)
    assert (version.state, version.author, version.submitted_by, version.approver) == (
        "approved",
        manager,
        manager,
        approver,
    )


def test_an_edit_awaiting_approval_changes_nothing_the_worker_evaluates(
    trigger, live_campaign, manager
):
    result = campaign_change(
        campaign=edited(
            live_campaign, condition="context.amount >= 1000.0", reward_value=Decimal("99")
        ),
        author=manager,
    )
    assert result.outcome == ChangeOutcome.PROPOSED

    event = TriggerEventFactory(trigger=trigger, context={"amount": 25, "currency": "USD"})
    process()

    # The old rule (amount >= 20) and the old amount (10) applied, under the old version.
    assert decisions(event) == {"cashback": "rewarded"}
    reward = Reward.objects.get(trigger_event=event)
    assert (reward.amount, reward.campaign_version) == (Decimal("10"), 1)
    live_campaign.refresh_from_db()
    assert (live_campaign.condition, live_campaign.version) == ("context.amount >= 20.0", 1)


def test_raising_a_budget_needs_approval_and_lowering_it_is_immediate(live_campaign, manager):
    raised = campaign_change(campaign=edited(live_campaign, budget=Decimal("500")), author=manager)

    assert raised.outcome == ChangeOutcome.PROPOSED
    assert raised.version.changes == {"budget": ["100", "500"]}
    assert Campaign.objects.get(pk=live_campaign.pk).budget == Decimal("100")

    lowered = campaign_change(campaign=edited(live_campaign, budget=Decimal("50")), author=manager)

    assert lowered.outcome == ChangeOutcome.APPLIED
    assert Campaign.objects.get(pk=live_campaign.pk).budget == Decimal("50")
    # The raise still waits; approving it applies the raise only.
    assert raised.version.campaign.versions.filter(state="proposed").count() == 1


def test_raising_a_cap_or_removing_one_needs_approval(live_campaign, manager):
    Campaign.objects.filter(pk=live_campaign.pk).update(max_rewards_per_user=3)

    removed = campaign_change(
        campaign=edited(live_campaign, max_rewards_per_user=None), author=manager
    )

    assert removed.outcome == ChangeOutcome.PROPOSED


def test_approval_applies_the_change_bumps_the_version_and_new_rewards_name_it(
    trigger, live_campaign, manager, approver
):
    campaign_change(
        campaign=edited(live_campaign, reward_value=Decimal("25"), budget=Decimal("500")),
        author=manager,
    )

    version = campaign_approve(
        campaign=live_campaign, approver=approver, shown_id=shown(live_campaign)
    )
    event = TriggerEventFactory(trigger=trigger)
    process()

    live_campaign.refresh_from_db()
    assert (live_campaign.version, version.version) == (2, 2)
    assert (live_campaign.reward_value, live_campaign.budget) == (Decimal("25"), Decimal("500"))
    reward = Reward.objects.get(trigger_event=event)
    assert (reward.amount, reward.campaign_version) == (Decimal("25"), 2)
    assert (
        CampaignVersion.objects.get(campaign=live_campaign, version=2).snapshot["reward_value"]
        == "25"
    )


def test_history_keeps_author_approver_and_diff(live_campaign, manager, approver):
    campaign_change(campaign=edited(live_campaign, budget=Decimal("500")), author=manager)
    campaign_approve(campaign=live_campaign, approver=approver, shown_id=shown(live_campaign))

    latest = live_campaign.versions.get(version=2)

    assert (latest.author, latest.approver, latest.state) == (manager, approver, "approved")
    assert latest.changes == {"budget": ["100", "500"]}
    assert latest.approved_at is not None and latest.submitted_at is not None
    actions = list(AuditEntry.objects.order_by("at", "id").values_list("action", "actor"))
    assert actions == [("campaign.submit", manager.pk), ("campaign.approve", approver.pk)]


def test_reject_sends_a_submitted_draft_back_with_the_reason(trigger, manager, approver):
    campaign = campaign_submit(campaign=draft(trigger, manager), actor=manager)

    with pytest.raises(LifecycleRefused, match="Say why"):
        campaign_reject(campaign=campaign, actor=approver, reason=" ")
    version = campaign_reject(campaign=campaign, actor=approver, reason="Amount too high")

    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert (version.state, version.reason, version.rejected_by) == (
        "rejected",
        "Amount too high",
        approver,
    )


def test_a_rejected_change_leaves_the_live_campaign_as_it_was(live_campaign, manager, approver):
    campaign_change(campaign=edited(live_campaign, reward_value=Decimal("50")), author=manager)

    campaign_reject(campaign=live_campaign, actor=approver, reason="No")

    live_campaign.refresh_from_db()
    assert (live_campaign.reward_value, live_campaign.version) == (Decimal("10"), 1)
    with pytest.raises(LifecycleRefused, match="Nothing awaits approval"):
        campaign_approve(campaign=live_campaign, approver=approver, shown_id=shown(live_campaign))


def test_editing_a_submitted_draft_takes_it_back_to_draft(trigger, manager):
    campaign = campaign_submit(campaign=draft(trigger, manager), actor=manager)

    result = campaign_change(campaign=edited(campaign, reward_value=Decimal("6")), author=manager)

    assert result.withdrawn
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_new_edit_replaces_the_one_awaiting_approval(live_campaign, manager):
    first = campaign_change(campaign=edited(live_campaign, budget=Decimal("500")), author=manager)
    campaign_change(campaign=edited(live_campaign, budget=Decimal("700")), author=manager)

    first.version.refresh_from_db()
    assert first.version.state == "superseded"
    assert live_campaign.versions.get(state="proposed").changes == {"budget": ["100", "700"]}


def test_pause_is_immediate_resume_needs_the_approve_permission(
    trigger, live_campaign, manager, approver
):
    campaign_pause(campaign=live_campaign, actor=manager)
    event = TriggerEventFactory(trigger=trigger)
    process()
    assert decisions(event) == {}

    with pytest.raises(LifecycleRefused, match="approve_campaign"):
        campaign_resume(campaign=live_campaign, actor=manager)
    campaign_resume(campaign=live_campaign, actor=approver)
    again = TriggerEventFactory(trigger=trigger)
    process()
    assert decisions(again) == {"cashback": "rewarded"}


def test_ending_drops_a_change_awaiting_approval(live_campaign, manager):
    campaign_change(campaign=edited(live_campaign, budget=Decimal("500")), author=manager)

    campaign_end(campaign=live_campaign, actor=manager)

    assert Campaign.objects.get(pk=live_campaign.pk).status == "ended"
    assert not live_campaign.versions.filter(state="proposed").exists()
    with pytest.raises(LifecycleRefused, match="it is ended"):
        campaign_pause(campaign=live_campaign, actor=manager)


def test_a_campaign_that_ends_by_itself_drops_its_change_awaiting_approval(live_campaign, manager):
    campaign_change(campaign=edited(live_campaign, budget=Decimal("500")), author=manager)
    Campaign.objects.filter(pk=live_campaign.pk).update(
        ends_at=timezone.now() - timedelta(days=400)
    )

    campaigns_end_expired()

    assert Campaign.objects.get(pk=live_campaign.pk).status == "ended"
    assert live_campaign.versions.get(version=None).state == "superseded"


def test_a_draft_that_cannot_run_cannot_be_submitted(trigger, manager):
    campaign = draft(trigger, manager)
    Campaign.objects.filter(pk=campaign.pk).update(condition="context.nope > 1")

    with pytest.raises(LifecycleRefused, match="cannot go live"):
        campaign_submit(campaign=campaign, actor=manager)
