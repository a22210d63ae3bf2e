"""The report aggregates equal a recomputation from the raw rows: random sequences of events
(some of which break their evaluation until they fail), rewards, partial and full reversals,
concurrent workers, both modes, around a local midnight of a zone offset by 5:45
(Asia/Kathmandu), then around a midnight of the zone the partnership changes to (St. John's,
-3:30), read in both zones."""

import itertools
import random
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from rewards.models import Reward
from rewards.reports.maintain import reports_count_received
from rewards.reports.selectors import (
    liability_at,
    local_midnight,
    report_campaigns,
    report_days,
    report_outcomes_by_day,
    report_scope,
    report_totals,
)
from rewards.services.evaluation import trigger_events_evaluate
from tests.factories import ApiKeyFactory, CampaignFactory, EndUserFactory, TriggerFactory
from tests.rewards.conftest import process_batch
from tests.rewards.reports import recompute
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ZONE = "Asia/Kathmandu"  # UTC+5:45: its days start at 18:15 UTC
LATER_ZONE = "America/St_Johns"  # UTC-3:30 (-2:30 in summer)
POISON = "ERR"  # an event whose context says this currency breaks the evaluation
_days = itertools.count(1)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("events"), st.integers(1, 25), st.sampled_from(["live", "test"])),
        st.tuples(st.just("process"), st.integers(1, 4)),
        st.tuples(st.just("reverse"), st.integers(0, 10**6), st.booleans()),
    ),
    min_size=2,
    max_size=8,
)


class World:
    """One partnership with three campaigns that reward differently and run into limits."""

    def __init__(self) -> None:
        self.trigger = TriggerFactory(partnership__time_zone=ZONE)
        self.partnership = self.trigger.partnership
        CampaignFactory(
            trigger=self.trigger,
            condition="context.amount >= 20.0",
            reward_value=Decimal("5"),
            budget=Decimal("60"),
            priority=3,
        )
        CampaignFactory(
            trigger=self.trigger,
            reward_type="percentage",
            reward_value=Decimal("10"),
            reward_field="amount",
            max_rewards_per_user=2,
            priority=2,
        )
        CampaignFactory(trigger=self.trigger, reward_value=Decimal("1.25"), max_rewards=15)
        self.users = [EndUserFactory(partnership=self.partnership) for _ in range(5)]
        self.clients = {mode: self._client(mode) for mode in ("live", "test")}
        self.reversals: list[tuple[int, bool]] = []

    def _client(self, mode: str) -> APIClient:
        client = APIClient()
        client.credentials(
            HTTP_X_API_KEY=ApiKeyFactory(partnership=self.partnership, mode=mode).plaintext
        )
        return client

    def events(self, count: int, mode: str, rng: random.Random) -> None:
        now = timezone.now()
        TriggerEvent.objects.bulk_create(
            TriggerEvent(
                partnership=self.partnership,
                trigger=self.trigger,
                end_user=rng.choice(self.users),
                mode=mode,
                context={
                    "amount": rng.randint(500, 9999) / 100,
                    "currency": POISON if rng.random() < 0.05 else "USD",
                },
                occurred_at=now,
                received_at=now,
                deliver_at=now,
            )
            for _ in range(count)
        )

    def process(self, workers: int) -> None:
        """Workers drain the queue while the reversals asked for so far run alongside."""
        errors: list[BaseException] = []
        reversals, self.reversals = self.reversals, []

        def run(work) -> None:
            try:
                work()
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        drained = threading.Barrier(workers + 1)

        def drain() -> None:
            while process_batch(limit=7, processor=evaluate_unless_poisoned):
                pass
            drained.wait()

        def reverse() -> None:
            """While the workers run; one with nothing to reverse yet waits for them."""
            waited = False
            for pick, partial in reversals:
                if not self.reverse(pick, partial) and not waited:
                    drained.wait()
                    waited = True
                    self.reverse(pick, partial)
            if not waited:
                drained.wait()

        threads = [threading.Thread(target=run, args=(drain,)) for _ in range(workers)]
        threads.append(threading.Thread(target=run, args=(reverse,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    def reverse(self, pick: int, partial: bool) -> bool:
        """Reverses one of the events with a reward standing (all or part); False if none."""
        standing = list(
            Reward.objects.filter(partnership=self.partnership, status="issued")
            .order_by("issued_at", "id")
            .values_list("trigger_event_id", "trigger_event__mode")
            .distinct()
        )
        if not standing:
            return False
        event_id, mode = standing[pick % len(standing)]
        body = {"trigger_event_id": str(event_id), "reason": "refund"}
        if partial:
            left = sum(r.remaining for r in Reward.objects.filter(trigger_event_id=event_id))
            body["amount"] = str((left * Decimal(pick % 90 + 5) / 100).quantize(Decimal("0.01")))
        response = self.clients[mode].post(
            f"/partnerships/{self.partnership.id}/triggers/reverse", body, format="json"
        )
        # A reward reversed meanwhile by another step, or a share rounding to zero, is refused
        # with a clear code; anything else is a bug.
        assert response.status_code in (200, 409, 422), response.json()
        return True


def evaluate_unless_poisoned(events):
    if any(event.context.get("currency") == POISON for event in events):
        raise RuntimeError("a poisoned event breaks the batch")
    return trigger_events_evaluate(events)


def assert_reports_match(partnership, mode: str) -> None:
    zone = ZoneInfo(partnership.time_zone)
    money = recompute.money(partnership, mode, zone)
    events, decisions = recompute.activity(partnership, mode, zone)
    days = {key[0] for key in money} | {key[0] for key in events} or {date.today()}
    scope = report_scope(
        partnership=partnership, mode=mode, first_day=min(days), last_day=max(days)
    )

    by_day = {row.day: row for row in report_days(scope=scope)}
    for day, row in by_day.items():
        got = row.activity
        assert (got.events_received, got.events_evaluated, got.events_rewarded) == (
            events[(day, "received")],
            events[(day, "evaluated")],
            events[(day, "rewarded")],
        ), day
        assert got.events_failed == events[(day, "failed")]
        for figures in row.money:
            of_day = {k: v for k, v in money.items() if k[0] == day and k[2] == figures.unit}
            issued = [v for k, v in of_day.items() if k[3] == "issued"]
            reversed_ = [v for k, v in of_day.items() if k[3] == "reversed"]
            assert figures.issued_count == sum(v[0] for v in issued), day
            assert figures.issued_amount == sum((v[1] for v in issued), Decimal(0)), day
            assert figures.reversed_count == sum(v[0] for v in reversed_), day
            assert figures.reversed_amount == sum((v[1] for v in reversed_), Decimal(0)), day

        day_scope = report_scope(partnership=partnership, mode=mode, first_day=day, last_day=day)
        for campaign in report_campaigns(scope=day_scope):
            for figures in campaign.money:
                key = (day, campaign.campaign_id, figures.unit)
                assert (figures.issued_count, figures.issued_amount) == money.get(
                    (*key, "issued"), (0, Decimal(0))
                ), key
                assert (figures.reversed_count, figures.reversed_amount) == money.get(
                    (*key, "reversed"), (0, Decimal(0))
                ), key
            expected_decisions = {
                outcome: n
                for (d, c, outcome), n in decisions.items()
                if d == day and c == campaign.campaign_id
            }
            assert campaign.decisions == expected_decisions, (day, campaign.name)

    for day, outcomes in report_outcomes_by_day(scope=scope):
        expected = Counter()
        for (decided_on, _, outcome), count in decisions.items():
            if decided_on == day:
                expected[outcome] += count
        assert outcomes == dict(expected), day

    totals = report_totals(scope=scope)
    rewards = Reward.objects.filter(partnership=partnership, mode=mode)
    assert totals.unique_users == len({r.end_user_id for r in rewards})
    assert sum(totals.decisions.values()) == sum(decisions.values())

    for moment in recompute.moments(partnership):
        assert liability_at(partnership=partnership, mode=mode, at=moment) == recompute.liability(
            partnership, mode, moment
        ), moment


def midnight_ahead(zone: str, days: int) -> datetime:
    today = timezone.now().astimezone(ZoneInfo(ZONE)).date()
    return local_midnight(today + timedelta(days=days), ZoneInfo(zone))


def run(world: World, steps, rng: random.Random) -> None:
    for step in [*steps, ("process", 2)]:
        if step[0] == "events":
            world.events(step[1], step[2], rng)
        elif step[0] == "process":
            world.process(step[1])
        else:
            world.reversals.append(step[1:])
    world.process(1)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=steps,
    later=steps,
    leads=st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 2.0)),
    seed=st.integers(0, 2**32),
)
def test_reports_equal_a_recomputation_from_the_raw_rows(settings, steps, later, leads, seed):
    """Each example runs ``leads[0]`` seconds before a Kathmandu midnight, later than the last
    example's, then ``leads[1]`` seconds before the next St. John's midnight."""
    settings.EVENT_RETRY_DELAY_SECONDS = 0
    settings.EVENT_MAX_ATTEMPTS = 2
    rng = random.Random(seed)
    day = next(_days)
    with time_machine.travel(midnight_ahead(ZONE, day) - timedelta(seconds=leads[0]), tick=True):
        world = World()
        run(world, steps, rng)
    with time_machine.travel(
        midnight_ahead(LATER_ZONE, day) - timedelta(seconds=leads[1]), tick=True
    ):
        run(world, later, rng)
        reports_count_received(
            now=timezone.now() + timedelta(seconds=settings.REPORTS_RECEIVED_SETTLE_SECONDS + 1)
        )
        events = TriggerEvent.objects.filter(partnership=world.partnership)
        # Every healthy event evaluated once (no deadlock or retry), every poisoned one failed.
        assert {(e.context["currency"], e.status, e.attempts) for e in events} <= {
            ("USD", "processed", 1),
            (POISON, "failed", 2),
        }
        for zone in (ZONE, LATER_ZONE):
            world.partnership.time_zone = zone
            world.partnership.save(update_fields=["time_zone"])
            for mode in ("live", "test"):
                assert_reports_match(world.partnership, mode)
