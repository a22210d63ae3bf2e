"""The dry run is the workers' answer: run before the worker on the same state, it gives the
decisions and amounts the worker then writes, and it writes nothing itself."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from campaigns.models import Campaign
from config.json_input import NOT_FINITE, TOO_DEEP
from partnerships.models import EndUser, PartnershipMember
from rewards.models import CampaignCounter, Reward, UserCounter, WebhookDelivery
from rewards.reports.models import ActivityBucket, MoneyBucket
from rewards.simulation.dryrun import dry_run_sample, trigger_event_dry_run
from tests.campaigns.test_builder import campaign_form
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory, TriggerFactory
from tests.rewards.conftest import decision_views, process_batch
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

SPEND_FACT = {"name": "spend_30d", "aggregate": "sum", "field": "amount", "window_days": 30}
PURCHASES_FACT = {"name": "purchases_7d", "aggregate": "count", "window_days": 7}


def row_counts() -> dict[str, int]:
    models = (
        Reward,
        CampaignCounter,
        UserCounter,
        TriggerEvent,
        EndUser,
        Campaign,
        WebhookDelivery,
        MoneyBucket,
        ActivityBucket,
    )
    return {model.__name__: model.objects.count() for model in models}


def shop(trigger) -> dict[str, Campaign]:
    """Several campaigns on one trigger: exclusivity, a budget, a per-user cap, a per-period
    cap, facts and a reward expression over user attributes."""
    return {
        "vip": CampaignFactory(
            trigger=trigger,
            slug="vip",
            priority=10,
            exclusive=True,
            condition="context.amount >= 100.0",
            reward_value=Decimal("20"),
            budget=Decimal("50"),
        ),
        "cashback": CampaignFactory(
            trigger=trigger,
            slug="cashback",
            priority=5,
            reward_type=Campaign.RewardType.PERCENTAGE,
            reward_value=Decimal("10"),
            reward_field="amount",
            max_rewards_per_user=2,
        ),
        "third": CampaignFactory(
            trigger=trigger,
            slug="third",
            priority=3,
            facts=[PURCHASES_FACT],
            condition="facts.purchases_7d >= 3",
            reward_value=Decimal("5"),
            max_rewards_per_user_per_period=1,
            period=Campaign.Period.DAY,
        ),
        "loyal": CampaignFactory(
            trigger=trigger,
            slug="loyal",
            priority=1,
            facts=[SPEND_FACT],
            reward_type=Campaign.RewardType.EXPRESSION,
            reward_value=None,
            reward_expression='facts.spend_30d * 0.01 + (has(user.tier) && user.tier == "gold" '
            "? 1.0 : 0.0)",
            max_amount_per_user=Decimal("6"),
        ),
    }


def queue(trigger, users, amounts) -> list[TriggerEvent]:
    """Events claimed in this order, users taking turns two events at a time, a day apart
    every third (so that some user has two events in one day)."""
    now = timezone.now()
    events = []
    for index, amount in enumerate(amounts):
        events.append(
            TriggerEventFactory(
                trigger=trigger,
                end_user=users[(index // 2) % len(users)],
                context={"amount": amount, "currency": "USD"},
                occurred_at=now - timedelta(days=(len(amounts) - index) // 3, minutes=index),
                deliver_at=now - timedelta(seconds=len(amounts) - index),
            )
        )
    return events


def dry(event: TriggerEvent) -> dict[str, tuple[str, str | None]]:
    run = trigger_event_dry_run(event=event)
    return {d.slug: (d.outcome, None if d.amount is None else str(d.amount)) for d in run.decisions}


def written(event: TriggerEvent) -> dict[str, tuple[str, str | None]]:
    return {view.campaign: (view.outcome, view.amount) for view in decision_views(event)}


def dry_run_then_worker(event: TriggerEvent) -> set[str]:
    """Dry-runs the queued ``event``, then has the worker's path evaluate it alone: the two
    must agree, and the dry run must write nothing. Returns the outcomes seen."""
    before = row_counts()
    predicted = dry(TriggerEvent.objects.get(pk=event.pk))
    assert row_counts() == before  # the dry run wrote nothing

    assert process_batch(limit=1) == 1  # the worker's path, this event alone

    assert written(event) == predicted, event.context
    return {outcome for outcome, _ in predicted.values()}


def test_the_dry_run_before_each_event_is_what_the_worker_then_writes(trigger):
    shop(trigger)
    users = [
        EndUserFactory(partnership=trigger.partnership, attributes={"tier": "gold"}),
        EndUserFactory(partnership=trigger.partnership),
        EndUserFactory(partnership=trigger.partnership, attributes={"tier": "silver"}),
    ]
    amounts = [120, 30, 45.5, 150, 12, 99.99, 200, 8, 60, 130, 75, 20, 110, 40, 55, 140, 33, 90]
    events = queue(trigger, users, amounts)
    outcomes = set()

    for event in events:
        outcomes |= dry_run_then_worker(event)

    # The sample exercised what it is meant to: rewards, exclusivity and each kind of limit.
    assert {
        "rewarded",
        "skipped_exclusive",
        "budget_exhausted",
        "user_cap_reached",
        "period_cap_reached",
        "condition_false",
    } <= outcomes
    assert Reward.objects.filter(campaign__slug="loyal").exists()


def test_a_sample_context_for_a_known_user_counts_their_history_and_itself(trigger):
    campaigns = shop(trigger)
    user = EndUserFactory(partnership=trigger.partnership, attributes={"tier": "gold"})
    queue(trigger, [user], [10, 20])
    while process_batch(limit=10):
        pass
    before = row_counts()

    run = trigger_event_dry_run(
        event=dry_run_sample(
            trigger=trigger, external_user_id=user.external_user_id, context={"amount": 30}
        )
    )

    assert row_counts() == before
    by_slug = {d.slug: d for d in run.decisions}
    assert run.user_known and run.sample
    assert by_slug["third"].facts == {"purchases_7d": 3}  # two stored events and the sample
    assert (by_slug["third"].outcome, by_slug["third"].amount) == ("rewarded", Decimal("5.00"))
    assert by_slug["loyal"].facts == {"spend_30d": 60.0}
    assert by_slug["loyal"].amount == Decimal("1.60")  # 60 * 0.01 + 1 (gold)
    assert by_slug["cashback"].outcome == "user_cap_reached"  # two rewards already
    assert by_slug["cashback"].computed == Decimal("3.00")
    cap = {limit.name: limit for limit in by_slug["cashback"].limits}["Rewards per user"]
    assert (cap.limit, cap.used) == ("2", "2 to this user")
    assert by_slug["vip"].outcome == "condition_false"
    assert by_slug["vip"].message == "condition is false"
    assert set(by_slug) == {c.slug for c in campaigns.values()}


def test_a_user_never_seen_has_no_history_attributes_or_counters(trigger):
    shop(trigger)

    run = trigger_event_dry_run(
        event=dry_run_sample(trigger=trigger, external_user_id="nobody", context={"amount": 150})
    )

    by_slug = {d.slug: d for d in run.decisions}
    assert not run.user_known
    assert (by_slug["vip"].outcome, by_slug["vip"].amount) == ("rewarded", Decimal("20.00"))
    assert by_slug["cashback"].outcome == "skipped_exclusive"
    assert by_slug["third"].facts == {"purchases_7d": 1}  # only itself
    assert not EndUser.objects.filter(external_user_id="nobody").exists()


def test_an_edited_campaign_is_judged_with_its_unsaved_values_in_its_place(trigger):
    campaigns = shop(trigger)
    vip = Campaign.objects.get(pk=campaigns["vip"].pk)
    vip.condition = "context.amount >= 10.0"  # not saved
    vip.priority = 0  # now judged last: no longer shadows the others
    event = dry_run_sample(trigger=trigger, external_user_id="someone", context={"amount": 50})

    run = trigger_event_dry_run(event=event, edited=vip)

    assert [d.slug for d in run.decisions] == ["cashback", "third", "loyal", "vip"]
    mine = run.decisions[-1]
    assert mine.edited and (mine.outcome, mine.amount) == ("rewarded", Decimal("20.00"))
    assert Campaign.objects.get(pk=vip.pk).condition == "context.amount >= 100.0"


def test_a_new_campaign_that_does_not_compile_is_judged_as_the_workers_would(trigger):
    CampaignFactory(trigger=trigger, slug="plain")
    draft = Campaign(
        partnership=trigger.partnership,
        trigger=trigger,
        name="Draft",
        slug="draft",
        condition='context.amount > "x"',
        reward_value=Decimal("1"),
    )
    event = dry_run_sample(trigger=trigger, external_user_id="u", context={"amount": 5})

    run = trigger_event_dry_run(event=event, edited=draft)

    mine = next(d for d in run.decisions if d.edited)
    assert mine.outcome == "campaign_invalid"
    assert "line 1, column 16" in mine.message


# --- The Pilot page -------------------------------------------------------------------------

DRY_RUN = "/pilot/campaigns/campaign/dry-run/"


def sample_form(trigger, **fields) -> dict:
    return {
        "dryrun-trigger": trigger.id,
        "dryrun-external_user_id": "alice",
        "dryrun-context": '{"amount": 150, "currency": "USD"}',
        "dryrun-mode": "live",
        **fields,
    }


def decision_cells(page: str) -> dict[str, dict[str, str]]:
    rows = {}
    for slug, row in re.findall(r'<tr data-decision="([^"]+)">(.*?)</tr>', page, re.S):
        cells = dict(re.findall(r"<td data-(\w+)[^>]*>(.*?)</td>", row, re.S))
        rows[slug] = {
            key: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", v)).strip() for key, v in cells.items()
        }
    return rows


def test_the_page_shows_each_campaigns_decision_amount_and_limits(admin_client, trigger):
    shop(trigger)
    before = row_counts()

    page = admin_client.post(DRY_RUN, sample_form(trigger)).content.decode()

    rows = decision_cells(page)
    assert rows["vip"]["outcome"] == "Rewarded"
    assert rows["vip"]["amount"] == "20.00"
    assert rows["vip"]["limits"] == "Budget: 50.00 (0.00 spent)"
    assert rows["cashback"]["outcome"] == "Skipped (exclusive campaign)"
    assert rows["cashback"]["message"] == "an exclusive campaign already rewarded it"
    assert rows["cashback"]["amount"] == "would be 15.00"
    assert rows["third"]["facts"] == "facts.purchases_7d = 1"
    assert "user never seen (new)" in page
    assert row_counts() == before


def test_a_past_event_is_picked_by_its_id(admin_client, trigger):
    shop(trigger)
    event = TriggerEventFactory(trigger=trigger, context={"amount": 30, "currency": "USD"})

    page = admin_client.post(
        DRY_RUN, {"dryrun-event": str(event.id), "dryrun-mode": "live"}
    ).content.decode()

    rows = decision_cells(page)
    assert rows["cashback"]["outcome"] == "Rewarded"
    assert rows["cashback"]["amount"] == "3.00"
    assert f"Event <code>{event.id}</code>" in page


def test_a_context_the_api_would_refuse_is_refused(admin_client, trigger):
    shop(trigger)

    response = admin_client.post(
        DRY_RUN, sample_form(trigger, **{"dryrun-context": '{"amount": "x"}'})
    )

    errors = response.context["form"].errors["context"]
    assert any(error.startswith("context.amount:") for error in errors)
    assert any(error == "context.currency: This field is required" for error in errors)
    assert "data-decision=" not in response.content.decode()


@pytest.mark.parametrize(
    ("context", "error"),
    [("[" * 3000 + "]" * 3000, TOO_DEEP), ('{"amount": NaN}', NOT_FINITE)],
    ids=["deep", "nan"],
)
def test_a_context_python_cannot_parse_is_refused_at_its_field(
    admin_client, trigger, context, error
):
    shop(trigger)

    response = admin_client.post(DRY_RUN, sample_form(trigger, **{"dryrun-context": context}))

    assert response.status_code == 200
    assert response.context["form"].errors["context"] == [error]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:00Z"])
def test_a_time_no_campaign_can_run_at_is_refused_at_its_field(admin_client, trigger, when):
    trigger.partnership.time_zone = "America/New_York" if when < "5" else "Asia/Tokyo"
    trigger.partnership.save()
    CampaignFactory(trigger=trigger, max_rewards_per_user_per_period=1, period="day")

    response = admin_client.post(DRY_RUN, sample_form(trigger, **{"dryrun-occurred_at": when}))

    assert response.status_code == 200
    assert response.context["form"].errors["occurred_at"] == [
        "A time from 2000 to 2200 (campaigns' dates)"
    ]
    assert "data-decision=" not in response.content.decode()


def test_the_campaign_pages_unsaved_values_take_part(admin_client, trigger):
    campaigns = shop(trigger)
    vip = campaigns["vip"]
    edited = campaign_form(
        trigger,
        name="VIP",
        slug="vip",
        priority=10,
        exclusive="on",
        condition="context.amount >= 10.0",
        reward_value="7",
        budget="50",
        _dryrun_from_builder="1",
    )
    opened = admin_client.post(f"{DRY_RUN}?campaign={vip.pk}", edited).content.decode()
    assert "with the values of its page (not saved)" in opened
    assert 'name="condition" value="context.amount &gt;= 10.0"' in opened  # carried along

    page = admin_client.post(
        f"{DRY_RUN}?campaign={vip.pk}",
        {
            **edited,
            **sample_form(trigger, **{"dryrun-context": '{"amount": 40, "currency": "USD"}'}),
        },
    ).content.decode()

    rows = decision_cells(page)
    assert rows["vip"]["outcome"] == "Rewarded"
    assert rows["vip"]["amount"] == "7.00"
    assert "edited, unsaved" in page
    assert rows["cashback"]["outcome"] == "Skipped (exclusive campaign)"
    vip.refresh_from_db()
    assert (vip.condition, vip.reward_value, vip.version) == (
        "context.amount >= 100.0",
        Decimal("20"),
        1,
    )


def test_the_campaign_page_has_the_dry_run_button(admin_client, trigger):
    campaign = CampaignFactory(trigger=trigger)

    page = admin_client.get(f"/pilot/campaigns/campaign/{campaign.pk}/change/").content.decode()

    assert f'formaction="{DRY_RUN}?campaign={campaign.pk}"' in page
    assert "Dry run these values" in page


def test_the_dry_run_needs_the_view_campaign_permission(client, django_user_model, trigger):
    user = django_user_model.objects.create_user("support", is_staff=True)
    client.force_login(user)
    assert client.get(DRY_RUN).status_code == 403

    user.user_permissions.set(Permission.objects.filter(codename="view_campaign"))
    assert client.get(DRY_RUN).status_code == 200


def test_an_operator_cannot_dry_run_another_partnerships_events(client, django_user_model, trigger):
    shop(trigger)
    stranger = TriggerFactory()
    theirs = TriggerEventFactory(trigger=stranger)
    user = django_user_model.objects.create_user("ops", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_campaign"))
    PartnershipMember.objects.create(user=user, partnership=trigger.partnership)
    client.force_login(user)

    by_id = client.post(DRY_RUN, {"dryrun-event": str(theirs.id), "dryrun-mode": "live"})
    by_trigger = client.post(DRY_RUN, sample_form(stranger))

    assert by_id.context["form"].errors["event"] == ["No event with this id in your partnerships"]
    assert "trigger" in by_trigger.context["form"].errors
    assert (
        client.post(
            f"{DRY_RUN}?campaign={CampaignFactory(trigger=stranger).pk}",
            {"_dryrun_from_builder": "1"},
        ).status_code
        == 404
    )
    mine = client.post(DRY_RUN, sample_form(trigger)).content.decode()
    assert decision_cells(mine)["vip"]["outcome"] == "Rewarded"


def test_a_new_campaign_from_the_add_page_takes_part_before_it_exists(admin_client, trigger):
    shop(trigger)
    new = campaign_form(
        trigger,
        name="Welcome",
        slug="welcome",
        priority=20,
        condition="facts.firsts == 1",
        reward_value="3",
        facts=[{"name": "firsts", "aggregate": "count", "window_days": 366}],
        _dryrun_from_builder="1",
    )
    before = row_counts()

    page = admin_client.post(DRY_RUN, {**new, **sample_form(trigger)}).content.decode()

    rows = decision_cells(page)
    assert next(iter(rows)) == "welcome"  # the highest priority, judged first
    assert (rows["welcome"]["outcome"], rows["welcome"]["amount"]) == ("Rewarded", "3.00")
    assert rows["welcome"]["facts"] == "facts.firsts = 1"
    assert rows["vip"]["outcome"] == "Rewarded"  # "welcome" is not exclusive
    assert row_counts() == before


def test_a_sum_fact_of_a_new_user_is_a_number_the_rule_can_compare(trigger):
    CampaignFactory(
        trigger=trigger,
        slug="spender",
        facts=[SPEND_FACT],
        condition="facts.spend_30d >= 100.0",
    )

    run = trigger_event_dry_run(
        event=dry_run_sample(trigger=trigger, external_user_id="new", context={"amount": 150})
    )

    (decision,) = run.decisions
    assert decision.facts == {"spend_30d": 150.0}
    assert decision.outcome == "rewarded"


def test_a_read_only_operator_dry_runs_the_saved_campaign_from_its_page(
    client, django_user_model, trigger
):
    vip = shop(trigger)["vip"]
    user = django_user_model.objects.create_user("reader", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_campaign"))
    PartnershipMember.objects.create(user=user, partnership=trigger.partnership)
    client.force_login(user)
    changed = campaign_form(trigger, slug="vip", reward_value="999", _dryrun_from_builder="1")

    page = client.post(
        f"{DRY_RUN}?campaign={vip.pk}", {**changed, **sample_form(trigger)}
    ).content.decode()

    rows = decision_cells(page)
    assert (rows["vip"]["outcome"], rows["vip"]["amount"]) == ("Rewarded", "20.00")  # saved


def test_the_dry_run_is_what_the_worker_writes_when_guards_set_campaigns_aside(trigger):
    guarded = 'context.merchant_category == "{}" && context.amount >= 20.0'
    for index, mcc in enumerate(["5411", "5812", "5999", "5411"]):
        CampaignFactory(
            trigger=trigger,
            slug=f"mcc-{index}",
            priority=index,
            condition=guarded.format(mcc),
            max_rewards_per_user=1,
        )
    CampaignFactory(
        trigger=trigger,
        slug="exclusive",
        priority=2,
        exclusive=True,
        condition=guarded.format("5812"),
        budget=Decimal("30"),
    )
    CampaignFactory(trigger=trigger, slug="plain", priority=-1, condition="context.amount > 50.0")
    users = [EndUserFactory(partnership=trigger.partnership) for _ in range(2)]
    outcomes = set()
    for index, (amount, mcc) in enumerate(
        [(30, "5411"), (30, "5812"), (60, "5812"), (10, "5999"), (80, None), (30, "5411")] * 2
    ):
        context = {"amount": amount, "currency": "USD"}
        if mcc:
            context["merchant_category"] = mcc
        event = TriggerEventFactory(trigger=trigger, end_user=users[index % 2], context=context)
        outcomes |= dry_run_then_worker(event)

    assert {"rewarded", "skipped_exclusive", "budget_exhausted", "user_cap_reached"} <= outcomes
