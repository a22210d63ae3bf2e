"""Approval in Pilot: buttons only for who may use them, refusals shown as messages, the
change awaiting approval and the history with their diffs."""

import re
from decimal import Decimal

import pytest
from django.test import Client

from campaigns.lifecycle import CHANGED_SINCE_SHOWN, FOUR_EYES, campaign_change, campaign_submit
from campaigns.models import Campaign
from campaigns.services import campaign_save
from partnerships.models import PartnershipMember
from partnerships.pilot_revision import LOADED
from tests.factories import CampaignFactory, PartnershipFactory

pytestmark = pytest.mark.django_db

FORM_FIELDS = (
    "partnership",
    "trigger",
    "name",
    "slug",
    "description",
    "priority",
    "condition",
    "reward_type",
    "reward_value",
    "reward_field",
    "reward_expression",
    "reward_min",
    "reward_max",
    "rounding",
    "budget",
    "max_rewards",
    "max_rewards_per_user",
    "max_rewards_per_user_per_period",
    "period",
    "max_amount_per_user",
)


def pilot_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(campaign: Campaign) -> str:
    return f"/pilot/campaigns/campaign/{campaign.pk}/change/"


def form_of(campaign: Campaign, **changes) -> dict:
    """The change form as Pilot fills it, with the operator's ``changes``."""
    data = {}
    for name in FORM_FIELDS:
        value = getattr(campaign, Campaign._meta.get_field(name).attname)
        data[name] = "" if value is None else str(value)
    data["facts"] = "[]"
    data.update({"counters-TOTAL_FORMS": 0, "counters-INITIAL_FORMS": 0})
    # The page opened now: the revision it would carry (a new campaign's page: none).
    saved = Campaign.objects.filter(pk=campaign.pk).values_list("revision", flat=True)
    if revision := saved.first():
        data[LOADED] = revision
    data.update({key: str(value) for key, value in changes.items()})
    return data


def draft(trigger, author) -> Campaign:
    return campaign_save(
        campaign=Campaign(
            partnership=trigger.partnership,
            trigger=trigger,
            name="New",
            slug="new",
            reward_value=Decimal("5"),
        ),
        author=author,
    )


def shown_id(confirm) -> str:
    """What the confirmation page's form carries to Approve: the version it showed."""
    match = re.search(r'name="shown" value="(\d+)"', confirm.content.decode())
    assert match, "the confirmation page carries no version"
    return match.group(1)


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_status_is_not_an_editable_field(approver, live_campaign):
    html = pilot_as(approver).get(page(live_campaign)).content.decode()

    assert 'name="status"' not in html
    assert "active" in html


def test_buttons_show_only_to_who_may_use_them(manager, approver, trigger):
    campaign = draft(trigger, manager)
    as_manager = pilot_as(manager).get(page(campaign)).content.decode()
    assert f"/{campaign.pk}/submit/" in as_manager
    assert f"/{campaign.pk}/approve/" not in as_manager

    pilot_as(manager).post(f"/pilot/campaigns/campaign/{campaign.pk}/submit/")
    campaign.refresh_from_db()
    assert campaign.status == "submitted"

    as_manager = pilot_as(manager).get(page(campaign)).content.decode()
    as_approver = pilot_as(approver).get(page(campaign)).content.decode()
    assert f"/{campaign.pk}/approve/" not in as_manager
    assert f"/{campaign.pk}/approve/" in as_approver
    assert f"/{campaign.pk}/reject/" in as_approver


def test_a_campaign_manager_approving_by_url_is_refused_with_a_message(manager, trigger):
    campaign = campaign_submit(campaign=draft(trigger, manager), actor=manager)

    response = pilot_as(manager).post(
        f"/pilot/campaigns/campaign/{campaign.pk}/approve/", follow=True
    )

    assert response.redirect_chain[-1][0] == page(campaign)
    assert any("campaigns.approve_campaign" in text for text in shown_messages(response))
    campaign.refresh_from_db()
    assert campaign.status == "submitted"


def test_approving_ones_own_change_in_pilot_shows_four_eyes(approver, live_campaign):
    edited = Campaign.objects.get(pk=live_campaign.pk)
    edited.budget = Decimal("500")
    campaign_change(campaign=edited, author=approver)

    as_author = pilot_as(approver)
    html = as_author.get(page(live_campaign)).content.decode()
    assert f"/{live_campaign.pk}/approve/" not in html
    response = as_author.post(f"/pilot/campaigns/campaign/{live_campaign.pk}/approve/", follow=True)

    assert FOUR_EYES in shown_messages(response)
    assert Campaign.objects.get(pk=live_campaign.pk).budget == Decimal("100")


def test_an_edit_in_pilot_waits_for_approval_and_shows_its_diff(manager, approver, live_campaign):
    response = pilot_as(manager).post(
        page(live_campaign), form_of(live_campaign, budget="500"), follow=True
    )

    assert response.status_code == 200
    assert any("awaits approval" in text for text in shown_messages(response))
    assert not any("changed successfully" in text for text in shown_messages(response))
    assert Campaign.objects.get(pk=live_campaign.pk).budget == Decimal("100")
    html = pilot_as(approver).get(page(live_campaign)).content.decode()
    assert 'id="pending-change"' in html
    assert "budget: 100 -&gt; 500" in html
    assert "Submitted by manager" in html
    listing = pilot_as(approver).get("/pilot/campaigns/campaign/").content.decode()
    assert "active (change awaiting approval)" in listing

    confirm = pilot_as(approver).get(f"/pilot/campaigns/campaign/{live_campaign.pk}/approve/")
    assert "budget: 100 -&gt; 500" in confirm.content.decode()
    approved = pilot_as(approver).post(
        f"/pilot/campaigns/campaign/{live_campaign.pk}/approve/",
        {"shown": shown_id(confirm)},
        follow=True,
    )

    assert any(text.startswith("Approved") for text in shown_messages(approved))
    live_campaign.refresh_from_db()
    assert (live_campaign.budget, live_campaign.version) == (Decimal("500"), 2)
    history = approved.content.decode()
    row = history[history.index('id="version-history"') :]
    assert "budget: 100 -&gt; 500" in row
    assert "manager" in row and "alice" in row


def test_lowering_a_budget_in_pilot_applies_at_once(manager, live_campaign):
    response = pilot_as(manager).post(
        page(live_campaign), form_of(live_campaign, budget="40"), follow=True
    )

    assert any("changed successfully" in text for text in shown_messages(response))
    assert Campaign.objects.get(pk=live_campaign.pk).budget == Decimal("40")


def test_rejecting_in_pilot_asks_for_a_reason_and_keeps_it(manager, approver, live_campaign):
    pilot_as(manager).post(page(live_campaign), form_of(live_campaign, reward_value="30"))
    as_approver = pilot_as(approver)
    url = f"/pilot/campaigns/campaign/{live_campaign.pk}/reject/"

    assert 'name="reason"' in as_approver.get(url).content.decode()
    refused = as_approver.post(url, {"reason": ""}, follow=True)
    assert any("Say why" in text for text in shown_messages(refused))
    rejected = as_approver.post(url, {"reason": "30 is too generous"}, follow=True)

    assert any(text.startswith("Rejected") for text in shown_messages(rejected))
    assert "30 is too generous" in rejected.content.decode()
    assert Campaign.objects.get(pk=live_campaign.pk).reward_value == Decimal("10")


def test_pause_and_end_from_pilot(manager, live_campaign):
    client = pilot_as(manager)

    paused = client.post(f"/pilot/campaigns/campaign/{live_campaign.pk}/pause/", follow=True)
    assert any(text.startswith("Paused") for text in shown_messages(paused))
    html = paused.content.decode()
    assert f"/{live_campaign.pk}/resume/" not in html  # resuming is an approver's call
    assert f"/{live_campaign.pk}/end/" in html

    client.post(f"/pilot/campaigns/campaign/{live_campaign.pk}/end/")
    assert Campaign.objects.get(pk=live_campaign.pk).status == "ended"


def test_an_operator_of_another_partnership_cannot_act_by_url(django_user_model, live_campaign):
    from django.contrib.auth.models import Permission

    from partnerships.models import PartnershipMember
    from tests.factories import PartnershipFactory

    stranger = django_user_model.objects.create_user("stranger", is_staff=True)
    stranger.user_permissions.set(Permission.objects.filter(codename__endswith="_campaign"))
    PartnershipMember.objects.create(user=stranger, partnership=PartnershipFactory())

    response = pilot_as(stranger).post(f"/pilot/campaigns/campaign/{live_campaign.pk}/pause/")

    assert response.status_code == 404
    assert Campaign.objects.get(pk=live_campaign.pk).status == "active"


# --- Approve puts live only what the approver was shown ---------------------------------------


def test_a_change_proposed_again_after_the_confirm_page_is_not_approved(
    manager, approver, live_campaign
):
    pilot_as(manager).post(page(live_campaign), form_of(live_campaign, budget="500"))
    url = f"/pilot/campaigns/campaign/{live_campaign.pk}/approve/"
    confirm = pilot_as(approver).get(url)
    assert "budget: 100 -&gt; 500" in confirm.content.decode()
    pilot_as(manager).post(page(live_campaign), form_of(live_campaign, budget="5000"))

    response = pilot_as(approver).post(url, {"shown": shown_id(confirm)}, follow=True)

    assert CHANGED_SINCE_SHOWN in shown_messages(response)
    live_campaign.refresh_from_db()
    assert (live_campaign.budget, live_campaign.version) == (Decimal("100"), 1)
    again = pilot_as(approver).get(url).content.decode()
    assert "budget: 100 -&gt; 5000" in again  # still awaiting approval, now shown


def test_a_draft_withdrawn_and_submitted_again_after_the_confirm_page_is_not_approved(
    manager, approver, trigger
):
    campaign = campaign_submit(campaign=draft(trigger, manager), actor=manager)
    url = f"/pilot/campaigns/campaign/{campaign.pk}/approve/"
    confirm = pilot_as(approver).get(url)
    pilot_as(manager).post(page(campaign), form_of(campaign, reward_value="500"))
    campaign_submit(campaign=campaign, actor=manager)

    response = pilot_as(approver).post(url, {"shown": shown_id(confirm)}, follow=True)

    assert CHANGED_SINCE_SHOWN in shown_messages(response)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.reward_value) == ("submitted", Decimal("500"))


def test_approve_posted_without_what_was_shown_is_refused(manager, approver, live_campaign):
    pilot_as(manager).post(page(live_campaign), form_of(live_campaign, budget="500"))

    response = pilot_as(approver).post(
        f"/pilot/campaigns/campaign/{live_campaign.pk}/approve/", follow=True
    )

    assert CHANGED_SINCE_SHOWN in shown_messages(response)
    assert Campaign.objects.get(pk=live_campaign.pk).budget == Decimal("100")


def test_a_saved_campaigns_partnership_cannot_be_changed(manager, live_campaign):
    other = PartnershipFactory(name="Elsewhere")
    PartnershipMember.objects.create(user=manager, partnership=other)
    client = pilot_as(manager)

    html = client.get(page(live_campaign)).content.decode()
    client.post(
        page(live_campaign), form_of(live_campaign, partnership=other.pk, description="moved")
    )

    assert 'name="partnership"' not in html  # shown, not a field
    live_campaign.refresh_from_db()
    assert live_campaign.partnership_id != other.pk
    assert live_campaign.description == "moved"  # the rest of the form was saved


# --- An exclusive campaign that stops taking events says who pays them now --------------------


@pytest.fixture
def exclusive(live_campaign):
    """``live_campaign`` made exclusive at priority 10, with one active campaign after it on
    the trigger, one before it, and a paused one after it."""
    Campaign.objects.filter(pk=live_campaign.pk).update(exclusive=True, priority=10)
    for name, priority, status in (
        ("Fallback", 1, "active"),
        ("Premium", 20, "active"),
        ("Dormant", 1, "paused"),
    ):
        CampaignFactory(
            trigger=live_campaign.trigger,
            name=name,
            slug=name.lower(),
            priority=priority,
            status=status,
        )
    return Campaign.objects.get(pk=live_campaign.pk)


HELD_BACK = "“Fallback” will now reward events this campaign took."


@pytest.mark.parametrize("act", ["pause", "end"])
def test_pausing_or_ending_an_exclusive_campaign_warns_who_now_rewards(approver, exclusive, act):
    confirm = pilot_as(approver).get(f"/pilot/campaigns/campaign/{exclusive.pk}/{act}/")

    warnings = [text for text in shown_messages(confirm) if "will now reward" in text]
    assert warnings == [
        f"{'Pausing' if act == 'pause' else 'Ending'} an exclusive campaign: {HELD_BACK}"
    ]


def test_lowering_a_cap_of_an_exclusive_campaign_warns_who_now_rewards(manager, exclusive):
    response = pilot_as(manager).post(
        page(exclusive), form_of(exclusive, budget="40", exclusive="on"), follow=True
    )

    assert f"A lower cap on an exclusive campaign: once reached, {HELD_BACK}" in shown_messages(
        response
    )
    assert Campaign.objects.get(pk=exclusive.pk).budget == Decimal("40")  # no approval


def test_a_campaign_that_is_not_exclusive_warns_of_nothing(approver, live_campaign):
    CampaignFactory(trigger=live_campaign.trigger, name="Fallback", slug="fallback", priority=-1)

    confirm = pilot_as(approver).get(f"/pilot/campaigns/campaign/{live_campaign.pk}/pause/")

    assert not [text for text in shown_messages(confirm) if "will now reward" in text]


def test_an_edit_that_replaces_someone_elses_pending_change_says_so(
    manager, second_approver, live_campaign
):
    pilot_as(manager).post(page(live_campaign), form_of(live_campaign, reward_value="2"))

    response = pilot_as(second_approver).post(
        page(live_campaign), form_of(live_campaign, budget="500"), follow=True
    )
    own = pilot_as(second_approver).post(
        page(live_campaign), form_of(live_campaign, budget="600"), follow=True
    )

    replaced = [text for text in shown_messages(response) if "It replaces the change" in text]
    assert len(replaced) == 1
    assert "manager proposed on" in replaced[0] and "reward_value" in replaced[0]
    # Replacing one's own pending change is nothing to be told about.
    assert not any("It replaces the change" in text for text in shown_messages(own))
