"""Backtest: exact arithmetic on known events, the workers' decisions on the same events, the
workers' facts, progress per chunk and the time bound."""

import dataclasses
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.compiler import CampaignSpec
from campaigns.engine import FactSpec
from campaigns.facts import facts_for_events
from campaigns.models import Campaign
from campaigns.selectors import (
    campaign_spec,
    trigger_event_decision_records,
    trigger_event_decisions,
)
from partnerships.models import EndUser
from rewards.models import CampaignCounter, Reward
from rewards.simulation import backtest, backtests, events
from rewards.simulation.backtest import (
    ASSUMPTIONS,
    Replay,
    backtest_setup,
    spec_from_json,
    spec_to_json,
)
from rewards.simulation.backtests import backtest_execute, backtest_start
from rewards.simulation.events import EventRow, event_chunks
from rewards.simulation.facts import FactHistories
from rewards.simulation.models import Backtest
from tests.factories import CampaignFactory, EndUserFactory, TriggerFactory
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


def event(
    trigger, user, received_at, amount=25, *, occurred_at=None, mode="live", **fields
) -> TriggerEvent:
    """A stored event as the workers leave it (or queued, with ``status``); ``merchant_category``
    goes into the context."""
    category = fields.pop("merchant_category", None)
    return TriggerEvent.objects.create(
        partnership=trigger.partnership,
        trigger=trigger,
        end_user=user,
        context={"amount": amount, "currency": "USD"}
        | ({"merchant_category": category} if category else {}),
        mode=mode,
        occurred_at=occurred_at or received_at,
        received_at=received_at,
        deliver_at=received_at,
        status=fields.pop("status", "processed"),
        **fields,
    )


def run(campaign: Campaign, *, days: int = 7, mode: str = "live", spec=None) -> Backtest:
    """Starts a backtest and runs it here, as the Celery task does."""
    started = backtest_start(campaign=campaign, days=days, mode=mode, spec=spec)
    backtest_execute(backtest_id=started.pk)
    started.refresh_from_db()
    return started


def noon(days_ago: int, hour: int = 12) -> datetime:
    day = (timezone.now() - timedelta(days=days_ago)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_a_budget_and_a_count_cap_spent_exactly_run_out_that_day_with_no_refusal(trigger):
    """The workers announce the budget exhausted on the reward that spends it to the cent; the
    backtest says the same day even when no later event is refused for it."""
    spent = CampaignFactory(
        trigger=trigger,
        status=Campaign.Status.DRAFT,
        reward_value=Decimal("10"),
        budget=Decimal("20"),
    )
    capped = CampaignFactory(
        trigger=trigger, status=Campaign.Status.DRAFT, reward_value=Decimal("10"), max_rewards=2
    )
    user = EndUserFactory(partnership=trigger.partnership)
    event(trigger, user, noon(3), 25)
    event(trigger, user, noon(2), 25)  # the second reward: 20 of 20, 2 of 2

    for campaign in (spent, capped):
        mine = run(campaign, days=7).results["campaign"]

        assert (mine["rewards"], Decimal(mine["amount"])) == (2, Decimal("20"))
        bites = mine["limit_bites"]
        assert (bites["budget_exhausted"], bites["count_cap_reached"]) == (0, 0)  # none refused
        ran_out = "budget_exhausted_on" if campaign is spent else "count_cap_reached_on"
        other = "count_cap_reached_on" if campaign is spent else "budget_exhausted_on"
        assert mine[ran_out] == noon(2).date().isoformat()
        assert mine[other] is None


def test_known_events_give_exact_counts_amounts_users_budget_day_and_limit_bites(trigger):
    partnership = trigger.partnership
    partnership.time_zone = "America/New_York"  # UTC-5: 03:00 UTC is the day before
    partnership.save()
    draft = CampaignFactory(
        trigger=trigger,
        status=Campaign.Status.DRAFT,
        condition="context.amount >= 20.0",
        reward_value=Decimal("10"),
        budget=Decimal("35"),
        max_rewards_per_user=2,
    )
    a, b, c = (EndUserFactory(partnership=partnership) for _ in range(3))
    event(trigger, a, noon(3), 25)  # rewarded (a: 1, spent 10)
    event(trigger, a, noon(3, 13), 10)  # condition false
    event(trigger, a, noon(3, 14), 30)  # rewarded (a: 2, spent 20)
    event(trigger, a, noon(3, 20), 30)  # the user's cap (20 + 10 fits the budget)
    event(trigger, b, noon(2, 3), 50)  # rewarded (spent 30), a day earlier in New York
    event(trigger, c, noon(1), 50)  # 30 + 10 > 35: the budget runs out
    event(trigger, c, noon(1, 13), 50)  # and again
    # Not in the backtest: test mode, cancelled, failed, another trigger, before the window.
    event(trigger, a, noon(2), 50, mode="test")
    event(trigger, b, noon(2), 50, status="cancelled")
    event(trigger, b, noon(2), 50, status="failed")
    other = TriggerFactory(partnership=partnership, name="refund")
    event(other, b, noon(2), 50)
    event(trigger, b, noon(9), 50)

    done = run(draft, days=7)

    assert done.status == Backtest.Status.DONE
    assert (done.events_done, done.events_total) == (7, 7)
    results = done.results
    assert results["complete"] is True
    mine = results["campaign"]
    assert (mine["rewards"], Decimal(mine["amount"]), mine["users"]) == (3, Decimal("30"), 2)
    assert mine["budget_exhausted_on"] == noon(1).date().isoformat()
    assert mine["count_cap_reached_on"] is None
    assert mine["limit_bites"] == {
        "budget_exhausted": 2,
        "count_cap_reached": 0,
        "user_cap_reached": 1,
        "period_cap_reached": 0,
    }
    assert mine["outcomes"] == {
        "rewarded": 3,
        "budget_exhausted": 2,
        "condition_false": 1,
        "user_cap_reached": 1,
    }
    # Days are the partnership's: b's reward at 03:00 UTC falls on a's day in New York.
    assert results["days"] == [{"day": noon(3).date().isoformat(), "rewards": 3, "amount": "30.00"}]
    assert results["others"] == []
    assert results["assumptions"] == list(ASSUMPTIONS)
    assert not Reward.objects.exists()  # nothing issued
    assert not CampaignCounter.objects.exists()


def test_an_exclusive_campaign_of_higher_priority_takes_its_events_first(trigger):
    vip = CampaignFactory(
        trigger=trigger,
        slug="vip",
        priority=10,
        exclusive=True,
        condition="context.amount >= 40.0",
        reward_value=Decimal("5"),
    )
    draft = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT, slug="draft")
    user = EndUserFactory(partnership=trigger.partnership)
    event(trigger, user, noon(2), 50)
    event(trigger, user, noon(1), 25)

    results = run(draft).results

    assert results["campaign"]["outcomes"] == {"skipped_exclusive": 1, "rewarded": 1}
    assert (results["campaign"]["rewards"], Decimal(results["campaign"]["amount"])) == (1, 10)
    (other,) = results["others"]
    assert (other["slug"], other["priority"], other["exclusive"]) == ("vip", 10, True)
    assert other["rewards"] == 1
    assert Decimal(other["amount"]) == 5
    assert other["outcomes"] == {"rewarded": 1, "condition_false": 1}
    assert vip.pk != draft.pk


def test_an_unsaved_edit_is_what_is_backtested_and_the_campaign_stays_as_saved(trigger):
    CampaignFactory(
        trigger=trigger, slug="vip", priority=10, exclusive=True, reward_value=Decimal("5")
    )
    live = CampaignFactory(trigger=trigger, slug="live", reward_value=Decimal("10"))
    user = EndUserFactory(partnership=trigger.partnership)
    event(trigger, user, noon(1), 50)
    live.priority, live.exclusive, live.reward_value = 20, True, Decimal("7")  # not saved

    done = run(live)

    mine = done.results["campaign"]
    assert (mine["rewards"], Decimal(mine["amount"])) == (1, 7)
    assert done.results["others"][0]["outcomes"] == {"skipped_exclusive": 1}
    assert done.spec["priority"] == 20 and done.spec["reward_value"] == "7"
    live.refresh_from_db()
    assert (live.priority, live.exclusive, live.reward_value) == (0, False, Decimal("10"))


def test_counters_start_at_zero_whatever_the_campaign_issued_before(trigger):
    live = CampaignFactory(trigger=trigger, budget=Decimal("10"))
    CampaignCounter.objects.create(campaign=live, mode="live", reward_count=1, spent=10)
    user = EndUserFactory(partnership=trigger.partnership)
    event(trigger, user, noon(1))

    assert run(live).results["campaign"]["rewards"] == 1


def test_a_user_blocked_now_earns_nothing_as_the_workers_decide(trigger):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("10"))
    free = EndUserFactory(partnership=trigger.partnership)
    blocked = EndUserFactory(partnership=trigger.partnership, blocked_at=timezone.now())
    event(trigger, free, noon(1))
    event(trigger, blocked, noon(1, 13))

    mine = run(campaign).results["campaign"]

    assert (mine["rewards"], Decimal(mine["amount"]), mine["users"]) == (1, Decimal("10"), 1)
    assert mine["outcomes"] == {"rewarded": 1, "user_blocked": 1}
    assert any("blocked now earn nothing" in line for line in ASSUMPTIONS)


def test_a_number_beyond_64_bits_in_a_users_attributes_decides_as_the_workers(trigger, process):
    """jsonb prints 1e20 as a 21-digit integer: the workers read it as an int, which CEL
    refuses (``error``); read as a float it would let the rule pay."""
    campaign = CampaignFactory(
        trigger=trigger, reward_value=Decimal("10"), condition='user.tier == "gold"'
    )
    huge = EndUserFactory(partnership=trigger.partnership, attributes={"tier": "gold"})
    EndUser.objects.filter(pk=huge.pk).update(attributes={"tier": "gold", "balance": 10**20})
    plain = EndUserFactory(partnership=trigger.partnership, attributes={"tier": "gold"})
    queued = [event(trigger, user, noon(1), status="queued") for user in (huge, plain)]
    process()
    workers = [
        [view.outcome for view in trigger_event_decisions(event=TriggerEvent.objects.get(pk=e.pk))]
        for e in queued
    ]

    mine = run(campaign).results["campaign"]

    assert workers == [["error"], ["rewarded"]]
    assert (mine["rewards"], mine["outcomes"]) == (1, {"rewarded": 1, "error": 1})


def test_chunks_read_numbers_beyond_64_bits_in_contexts_and_tags_as_the_workers_read_them(
    trigger,
):
    """orjson reads 10**20 as a float, json.loads (the workers' JSONField) as an int: a chunk
    whose contexts or tags hold 19 digits in a row (PostgreSQL tells) is read by json.loads."""
    CampaignFactory(trigger=trigger)
    user = EndUserFactory(partnership=trigger.partnership)
    stored = [
        event(trigger, user, noon(3), amount=10**20),
        event(trigger, user, noon(2), tags={"ref": 12345678901234567890}),
        event(trigger, user, noon(1), amount=2.5),
    ]
    setup = backtest_setup(spec=campaign_spec(campaign=trigger.campaigns.get()), mode="live")

    for size in (1, 3):
        chunks = list(event_chunks(setup=setup, start=noon(4), end=noon(0), size=size))
        rows = [row for chunk in chunks for row in chunk]
        workers = [TriggerEvent.objects.get(pk=e.pk) for e in stored]
        assert [(row.context, row.tags) for row in rows] == [(e.context, e.tags) for e in workers]
        assert type(rows[0].context["amount"]) is int  # 10**20 == 1e20: the types tell
        assert type(rows[1].tags["ref"]) is int
        assert type(rows[2].context["amount"]) is float


def test_the_spec_kept_with_a_backtest_reads_back_as_given(trigger):
    campaign = CampaignFactory(
        trigger=trigger,
        budget=Decimal("12.5"),
        reward_max=Decimal("3"),
        max_rewards_per_user_per_period=2,
        period="week",
        starts_at=timezone.now(),
        facts=[{"name": "n", "aggregate": "count", "window_days": 3}],
    )
    spec = campaign_spec(campaign=campaign)

    assert spec_from_json(json.loads(json.dumps(spec_to_json(spec)))) == spec


def test_the_queries_read_columns_the_trigger_event_model_has():
    for field_name, column in events.EVENT_COLUMNS.items():
        assert TriggerEvent._meta.get_field(field_name).column == column


# --- The workers' answers ----------------------------------------------------------------------


def _mixed_campaigns(trigger) -> list[Campaign]:
    return [
        CampaignFactory(
            trigger=trigger,
            slug="big",
            priority=5,
            exclusive=True,
            condition="context.amount >= 200.0",
            reward_type="percentage",
            reward_value=Decimal("10"),
            reward_field="amount",
            reward_max=Decimal("25"),
            budget=Decimal("100"),
        ),
        CampaignFactory(
            trigger=trigger,
            slug="daily",
            reward_value=Decimal("3"),
            max_rewards_per_user_per_period=2,
            period="day",
            max_rewards=40,
        ),
        CampaignFactory(
            trigger=trigger,
            slug="regulars",
            facts=[{"name": "n30", "aggregate": "count", "window_days": 30}],
            condition="facts.n30 >= 2",
            reward_type="expression",
            reward_expression='context.amount * (user.tier == "gold" ? 0.1 : 0.02)',
            max_amount_per_user=Decimal("15"),
        ),
        CampaignFactory(
            trigger=trigger,
            slug="spenders",
            facts=[{"name": "spend_7d", "aggregate": "sum", "field": "amount", "window_days": 7}],
            condition="facts.spend_7d >= 300.0",
            reward_value=Decimal("1"),
        ),
    ]


def _random_events(
    trigger, count: int, seed: int = 11, categories=(), minutes: int = 50
) -> list[TriggerEvent]:
    """``count`` events over the last 5 days, ``minutes`` apart (a 5-day window holds ~140)."""
    rng = random.Random(seed)
    users = [
        EndUserFactory(partnership=trigger.partnership, attributes={"tier": tier})
        for tier in ("gold", "silver", "gold", "", "silver", "bronze")
    ]
    start = timezone.now() - timedelta(days=5)
    return [
        event(
            trigger,
            rng.choice(users),
            start + timedelta(minutes=minutes * n),
            round(rng.uniform(5, 300), 2),
            **({"merchant_category": rng.choice(categories)} if categories else {}),
            # Some arrive late: the facts are as of occurred_at, not of arrival.
            occurred_at=start + timedelta(minutes=minutes * n - rng.choice((0, 0, 0, 90, 2000))),
            status="queued",
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("users_kept", [None, 3])  # 3: the users read are dropped and read again
def test_the_backtest_decides_what_the_workers_issue_from_empty_counters(
    trigger, process, users_kept, monkeypatch
):
    if users_kept:
        monkeypatch.setattr(backtest, "MAX_USERS_KEPT", users_kept)
    campaigns = _mixed_campaigns(trigger)
    events = _random_events(trigger, 140)
    process()
    assert Reward.objects.count() > 20  # the workers' path issued, and limits bit

    setup = backtest_setup(spec=campaign_spec(campaign=campaigns[1]), mode="live")
    assert all(c.native is not None for c in setup.campaigns)  # judged as Python, not CEL
    replay = _replayed_as_the_workers_decided(setup, events)

    outcomes = _outcomes_of(replay)
    assert {"rewarded", "period_cap_reached", "budget_exhausted", "skipped_exclusive"} <= outcomes
    totals = replay.results(total=len(events), complete=True)
    issued = Reward.objects.filter(campaign=campaigns[1])
    assert totals["campaign"]["rewards"] == issued.count()
    assert totals["campaign"]["users"] == issued.values("end_user").distinct().count()


def _ten_campaigns(trigger) -> list[Campaign]:
    """Guarded by category or not, exclusive ones at several priorities, limits that bite, a
    rule beyond the native subset, an error, a campaign that starts within the window."""
    rules = [
        # (slug, priority, exclusive, condition, reward fields, limits)
        ("vip", 9, True, 'context.merchant_category == "5411" && context.amount >= 150.0',
         {"reward_type": "percentage", "reward_value": Decimal("10"), "reward_field": "amount",
          "reward_max": Decimal("20")}, {"budget": Decimal("90")}),
        ("grocery", 5, False, 'context.merchant_category == "5411"', {"reward_value": 2},
         {"max_rewards": 25}),
        ("fuel", 5, False, 'context.merchant_category == "5541" && context.amount >= 20.0',
         {"reward_type": "expression",
          "reward_expression": 'context.amount * (user.tier == "gold" ? 0.1 : 0.02)'},
         {"max_amount_per_user": Decimal("12")}),
        ("travel", 3, True, 'context.merchant_category == "4511"', {"reward_value": 5},
         {"max_rewards_per_user": 2}),
        ("weekly", 3, False, "context.amount >= 220.0", {"reward_value": 1},
         {"max_rewards_per_user_per_period": 1, "period": "week"}),
        ("regulars", 2, False, 'context.merchant_category == "5812" && facts.n30 >= 3',
         {"reward_value": 3, "facts": [{"name": "n30", "aggregate": "count",
                                        "window_days": 30}]}, {}),
        ("beyond", 2, False,  # a member call: CEL judges it, not the native subset
         'context.merchant_category == "5411" && context.currency.startsWith("US")',
         {"reward_value": Decimal("0.5")}, {}),
        ("broken", 1, False, 'context.merchant_category == "5541"',
         {"reward_type": "expression",
          "reward_expression": "context.amount / (context.amount - context.amount)"}, {}),
        ("late", 1, False, 'context.merchant_category in ["5411", "5812"]',
         {"reward_value": 1, "starts_at": timezone.now() - timedelta(days=2)},
         {"budget": Decimal("6")}),
        ("all", 0, False, None, {"reward_value": Decimal("0.1")}, {"max_rewards": 200}),
    ]  # fmt: skip
    return [
        CampaignFactory(
            trigger=trigger,
            slug=slug,
            priority=priority,
            exclusive=exclusive,
            **({"condition": condition} if condition else {}),
            **{k: Decimal(v) if k == "reward_value" else v for k, v in reward.items()},
            **limits,
        )
        for slug, priority, exclusive, condition, reward, limits in rules
    ]


def test_ten_campaigns_with_guards_exclusivity_and_limits_decide_as_the_workers(trigger, process):
    campaigns = _ten_campaigns(trigger)
    events = _random_events(
        trigger, 220, seed=5, categories=("5411", "5541", "4511", "5812"), minutes=30
    )
    blocked = EndUserFactory(partnership=trigger.partnership, blocked_at=timezone.now())
    events += [event(trigger, blocked, noon(1), 300, status="queued")]
    process()

    setup = backtest_setup(spec=campaign_spec(campaign=campaigns[1]), mode="live")
    beyond = next(c for c in setup.campaigns if c.slug == "beyond")
    assert beyond.native is None and beyond.guards  # CEL decides, after its guard
    replay = _replayed_as_the_workers_decided(setup, events)

    outcomes = _outcomes_of(replay)
    assert {
        "rewarded",
        "skipped_exclusive",
        "budget_exhausted",
        "count_cap_reached",
        "user_cap_reached",
        "period_cap_reached",
        "outside_schedule",
        "error",
        "user_blocked",
    } <= outcomes


def _replayed_as_the_workers_decided(setup, events) -> Replay:
    """Replays the events in chunks and holds every decision, and each campaign's totals, to
    the workers' stored ones (outcomes and amounts; the workers' messages and fact values are
    not a backtest's)."""
    stored = {e.id: trigger_event_decision_records(event=e) for e in TriggerEvent.objects.all()}
    replay = Replay(setup)
    replay.judge.record = {}
    end = timezone.now()
    window = {"setup": setup, "start": end - timedelta(days=7), "end": end}
    for chunk in event_chunks(**window, size=17, prepare=replay.prepare):
        replay.run(chunk)

    def decided(records):  # but condition_false, which the replay leaves implicit
        return [
            (str(key), str(outcome), None if amount is None else Decimal(amount))
            for key, outcome, amount, *_ in ((*record, None) for record in records)
            if outcome != "condition_false"
        ]

    replayed = {uuid.UUID(str(pk)): records for pk, records in replay.judge.record.items()}
    assert {e.id: decided(replayed.get(e.id, [])) for e in events} == {
        e.id: decided(stored[e.id]) for e in events
    }
    results = replay.results(total=len(events), complete=True)
    by_campaign = {c["id"]: c for c in results["others"]} | {
        results["campaign"]["id"]: results["campaign"]
    }
    for campaign in setup.campaigns:
        ours = by_campaign[campaign.key]
        mine = [d for e in events for d in stored[e.id] if d[0] == campaign.key]
        amounts = [Decimal(d[2]) for d in mine if d[1] == "rewarded"]
        assert ours["outcomes"] == dict(Counter(d[1] for d in mine)), campaign.slug
        assert (ours["rewards"], Decimal(ours["amount"])) == (len(amounts), sum(amounts))
    return replay


def _outcomes_of(replay: Replay) -> set[str]:
    return {str(o) for records in replay.judge.record.values() for _, o, _ in records}


def test_facts_read_chunk_by_chunk_equal_the_workers_facts(trigger):
    partnership = trigger.partnership
    refunds = TriggerFactory(partnership=partnership, name="refund")
    user, other = (EndUserFactory(partnership=partnership) for _ in range(2))
    at = timezone.now() - timedelta(days=1)
    window = timedelta(days=3)
    events = [
        event(trigger, user, at, 10),
        event(trigger, user, at + timedelta(seconds=1), 20, occurred_at=at),  # a tie
        event(trigger, user, at + timedelta(seconds=2), 40, occurred_at=at - window),  # edge
        event(trigger, user, at + timedelta(seconds=3), 80, occurred_at=at - window * 0.99),
        event(trigger, user, at + timedelta(seconds=4), 160, occurred_at=at - timedelta(days=40)),
        event(trigger, other, at + timedelta(seconds=5), 1),
        event(trigger, user, at + timedelta(seconds=6), "12", occurred_at=at),  # not a number
    ]
    # Counted by nobody: another mode, cancelled, failed. Counted on their trigger: refunds.
    event(trigger, user, at, 1000, mode="test")
    event(trigger, user, at, 1000, status="cancelled")
    event(trigger, user, at, 1000, status="failed")
    event(refunds, user, at - timedelta(hours=1), 7)
    specs = [
        FactSpec("n", "count", trigger.id, "", 3),
        FactSpec("s", "sum", trigger.id, "amount", 3),
        FactSpec("s_long", "sum", trigger.id, "amount", 60),
        FactSpec("refunds", "count", refunds.id, "", 1),
        FactSpec("refunded", "sum", refunds.id, "amount", 1),
    ]
    rows = [
        EventRow(e.id, e.end_user_id, e.context, e.tags, e.occurred_at, e.received_at)
        for e in events
    ]

    histories = FactHistories(specs=specs, mode="live")  # kept from chunk to chunk

    ours = {}
    for chunk in (rows[:3], rows[3:5], rows[5:], rows[:2]):  # later, earlier, again
        ours |= histories.values(chunk)

    assert ours == facts_for_events(events=events, specs=specs)
    assert ours[events[0].id][specs[0]] == 4  # itself, the tie, 0.99 windows back, "12"


# --- Progress and the time bound ------------------------------------------------------------


def test_progress_is_written_after_every_chunk(trigger, settings, monkeypatch):
    settings.BACKTEST_CHUNK_SIZE = 2
    draft = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    user = EndUserFactory(partnership=trigger.partnership)
    for n in range(5):
        event(trigger, user, noon(1) + timedelta(minutes=n))
    seen = []
    chunks = backtests.event_chunks

    def watched(**kwargs):
        for chunk in chunks(**kwargs):
            stored = Backtest.objects.values_list("status", "events_done", "events_total").get()
            seen.append(stored)
            yield chunk

    monkeypatch.setattr(backtests, "event_chunks", watched)

    done = run(draft)

    assert seen == [("running", 0, 5), ("running", 2, 5), ("running", 4, 5)]
    assert (done.status, done.events_done, done.events_total) == ("done", 5, 5)


def test_a_backtest_out_of_time_stops_with_its_partial_results_marked(trigger, settings):
    settings.BACKTEST_CHUNK_SIZE = 2
    settings.BACKTEST_MAX_SECONDS = 0
    draft = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    user = EndUserFactory(partnership=trigger.partnership)
    for n in range(5):
        event(trigger, user, noon(1) + timedelta(minutes=n))

    done = run(draft)

    assert done.status == Backtest.Status.TIMED_OUT
    assert (done.events_done, done.events_total) == (2, 5)
    assert done.results["complete"] is False
    assert (done.results["events"], done.results["events_total"]) == (2, 5)
    assert done.results["campaign"]["rewards"] == 2
    assert done.results["through"] == (noon(1) + timedelta(minutes=1)).isoformat()
    assert done.finished_at is not None


def test_a_campaign_that_stopped_compiling_fails_with_the_reason(trigger):
    draft = CampaignFactory(
        trigger=trigger, status=Campaign.Status.DRAFT, condition="context.amount >= 20.0"
    )
    started = backtest_start(campaign=draft, days=3, mode="live")
    trigger.context_schema = {"type": "object", "properties": {}}
    trigger.save()

    backtest_execute(backtest_id=started.pk)

    started.refresh_from_db()
    assert started.status == Backtest.Status.FAILED
    assert started.error.startswith("The campaign does not compile: condition:")


def test_a_finished_backtest_delivered_again_is_left_alone(trigger):
    draft = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    done = run(draft)
    finished_at = done.finished_at

    backtest_execute(backtest_id=done.pk)

    done.refresh_from_db()
    assert done.finished_at == finished_at


def test_the_task_is_registered_under_its_name():
    from config.celery import app

    app.loader.import_default_modules()
    assert app.tasks["rewards.simulation.run_backtest"].run.__module__ == (
        "rewards.simulation.tasks"
    )


def test_a_spec_need_not_come_from_a_saved_row(trigger):
    draft = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    user = EndUserFactory(partnership=trigger.partnership)
    event(trigger, user, noon(1), 50)
    spec: CampaignSpec = dataclasses.replace(
        campaign_spec(campaign=draft), reward_value=Decimal("2.5")
    )

    assert Decimal(run(draft, spec=spec).results["campaign"]["amount"]) == Decimal("2.5")
