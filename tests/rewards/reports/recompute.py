"""What the reports must say, recomputed from the raw rows in Python: rewards by issued_at,
adjustments by created_at, events by received_at and processed_at, their stored decisions. Shares
no code with rewards.reports (the point is to check it)."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from campaigns.decisions import Decision
from campaigns.selectors import trigger_event_decision_records
from rewards.models import Reward, RewardAdjustment
from triggers.models import TriggerEvent


def _day(moment: datetime, zone: ZoneInfo):
    return moment.astimezone(zone).date()


def money(partnership, mode: str, zone: ZoneInfo) -> dict:
    """{(day, campaign_id, unit, kind): (count, amount)}"""
    figures: dict = defaultdict(lambda: [0, Decimal(0)])
    for reward in Reward.objects.filter(partnership=partnership, mode=mode):
        entry = figures[(_day(reward.issued_at, zone), reward.campaign_id, reward.unit, "issued")]
        entry[0] += 1
        entry[1] += reward.amount
    adjustments = RewardAdjustment.objects.filter(
        reward__partnership=partnership, reward__mode=mode
    ).select_related("reward")
    for adjustment in adjustments:
        reward = adjustment.reward
        key = (_day(adjustment.created_at, zone), reward.campaign_id, reward.unit, "reversed")
        figures[key][0] += 1
        figures[key][1] += adjustment.amount
    return {key: tuple(value) for key, value in figures.items()}


def activity(partnership, mode: str, zone: ZoneInfo) -> tuple[Counter, Counter]:
    """({(day, metric): count}, {(day, campaign_id, outcome): count})"""
    events = Counter()
    decisions = Counter()
    rewarded = set(
        Reward.objects.filter(partnership=partnership, mode=mode).values_list(
            "trigger_event_id", flat=True
        )
    )
    for event in TriggerEvent.objects.filter(partnership=partnership, mode=mode):
        events[(_day(event.received_at, zone), "received")] += 1
        if event.status == TriggerEvent.Status.FAILED:
            events[(_day(event.processed_at, zone), "failed")] += 1
        if event.status != TriggerEvent.Status.PROCESSED:
            continue
        day = _day(event.processed_at, zone)
        events[(day, "evaluated")] += 1
        if event.id in rewarded:
            events[(day, "rewarded")] += 1
        for stored in trigger_event_decision_records(event=event):
            decision = Decision.unpack(stored)
            decisions[(day, decision.campaign_id, str(decision.outcome))] += 1
    return events, decisions


def liability(partnership, mode: str, at: datetime) -> dict[str, Decimal]:
    owed: dict[str, Decimal] = defaultdict(Decimal)
    for reward in Reward.objects.filter(partnership=partnership, mode=mode, issued_at__lte=at):
        owed[reward.unit] += reward.amount
    for adjustment in RewardAdjustment.objects.filter(
        reward__partnership=partnership, reward__mode=mode, created_at__lte=at
    ).select_related("reward"):
        owed[adjustment.reward.unit] -= adjustment.amount
    owed.setdefault(partnership.reward_unit, Decimal(0))
    return dict(owed)


def moments(partnership) -> list[datetime]:
    """Every moment a figure changed at, and each a microsecond before: the as-of edges."""
    times = set(Reward.objects.filter(partnership=partnership).values_list("issued_at", flat=True))
    times |= set(
        RewardAdjustment.objects.filter(reward__partnership=partnership).values_list(
            "created_at", flat=True
        )
    )
    return sorted(times | {moment - timedelta(microseconds=1) for moment in times})
