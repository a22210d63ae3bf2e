"""Evaluating claimed trigger events against their campaigns and issuing rewards.

The processor of ``triggers.services.processing``: runs inside its batch transaction, and
returns an ``EventOutcome`` per event that it writes with the rewards and counters, together or
not at all. It works in two phases:

1. **Rules**, without any campaign lock: schedule, condition (CEL) and amount for every
   (event, campaign). This is the CPU-heavy part, so concurrent workers overlap here.
2. **Issuance**, under the campaigns' counter locks (``Ledger``): in priority order per event,
   exclusivity, earlier rewards, budgets and caps decide, then rewards are written.

Every candidate campaign gets a decision on the event (see ``Outcome``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from campaigns.engine import CompiledCampaign, RuleRuntimeError, period_key
from campaigns.facts import facts_for_events
from campaigns.rules import event_data
from campaigns.selectors import campaign_list_active
from partnerships.models import EndUser, Partnership
from triggers.models import Trigger, TriggerEvent
from triggers.services.processing import EventOutcome

from ..decisions import Outcome
from ..models import Reward
from .ledger import Ledger
from .webhooks import webhook_deliveries_create

logger = logging.getLogger(__name__)


class _Verdict(NamedTuple):
    """Phase 1's answer for one (event, campaign): a final outcome, or an amount to issue."""

    campaign: CompiledCampaign
    outcome: Outcome | None  # None: eligible, subject to exclusivity and limits
    amount: Decimal | None
    message: str


class _NewReward(NamedTuple):
    """A reward to COPY in: a plain row, ~10x cheaper to build than a model instance."""

    id: uuid.UUID
    partnership_id: uuid.UUID
    campaign_id: uuid.UUID
    trigger_event_id: uuid.UUID
    end_user_id: uuid.UUID
    amount: Decimal
    reversed_amount: Decimal
    unit: str
    mode: str
    status: str
    issued_at: datetime
    occurred_at: datetime
    campaign_version: int
    user_periods: list[str]


@dataclass
class _Context:
    """What the rules of a batch read, loaded once."""

    campaigns: dict[int, list[CompiledCampaign]]
    users: dict[uuid.UUID, dict]
    trigger_names: dict[int, str]
    units: dict[uuid.UUID, tuple[str, int, ZoneInfo]]  # unit, decimal places, time zone
    facts: dict[uuid.UUID, dict]


def trigger_events_evaluate(events: list[TriggerEvent]) -> list[EventOutcome]:
    campaigns = {
        trigger_id: campaign_list_active(trigger_id=trigger_id)
        for trigger_id in {event.trigger_id for event in events}
    }
    candidates = {c.id: c for listed in campaigns.values() for c in listed}
    if not candidates:
        return [EventOutcome(event.id, TriggerEvent.Status.PROCESSED) for event in events]
    context = _load_context(events, campaigns, candidates)
    verdicts, failed = {}, []
    for event in events:
        try:
            verdicts[event.id] = _judge(event, context)
        except Exception as exc:  # a bug, not a rule error: fail this event, keep the batch
            failed.append(_fail(event, exc))
    decisions = _issue(
        [event for event in events if event.id in verdicts], verdicts, context, candidates
    )
    return failed + [
        EventOutcome(event_id, TriggerEvent.Status.PROCESSED, decisions=tuple(made))
        for event_id, made in decisions.items()
    ]


def _fail(event: TriggerEvent, exc: Exception) -> EventOutcome:
    logger.exception("Evaluating trigger event %s failed", event.id)
    return EventOutcome(event.id, TriggerEvent.Status.FAILED, f"{type(exc).__name__}: {exc}")


def trigger_events_failed_notify(events: list[TriggerEvent]) -> None:
    """``trigger_event.failed`` webhooks: the queue's ``on_failed``, in the transaction that
    fails the events (the one place this webhook is sent from)."""
    webhook_deliveries_create(
        event_type="trigger_event.failed",
        objects=[
            (
                event.partnership_id,
                {
                    "trigger_event_id": str(event.id),
                    "user_uuid": str(event.end_user_id),
                    "error": event.error,
                },
            )
            for event in events
        ],
    )


def _load_context(events, campaigns, candidates) -> _Context:
    specs = [spec for campaign in candidates.values() for spec in campaign.facts]
    return _Context(
        campaigns=campaigns,
        users=dict(
            EndUser.objects.filter(id__in={e.end_user_id for e in events}).values_list(
                "id", "attributes"
            )
        ),
        trigger_names=dict(Trigger.objects.filter(id__in=campaigns).values_list("id", "name")),
        units={
            pk: (unit, places, ZoneInfo(zone))
            for pk, unit, places, zone in Partnership.objects.filter(
                id__in={e.partnership_id for e in events}
            ).values_list("id", "reward_unit", "reward_decimal_places", "time_zone")
        },
        facts=facts_for_events(events=events, specs=specs) if specs else {},
    )


# --- Phase 1: rules -------------------------------------------------------------------------


def _judge(event: TriggerEvent, context: _Context) -> list[_Verdict]:
    campaigns = context.campaigns[event.trigger_id]
    if not campaigns:
        return []
    data = event_data(
        campaigns[0].env.fields,
        context=event.context,
        user=context.users.get(event.end_user_id, {}),
        trigger=context.trigger_names[event.trigger_id],
        occurred_at=event.occurred_at,
        tags=event.tags,
        mode=event.mode,
    )
    activations: dict[int, Any] = {}
    places = context.units[event.partnership_id][1]
    verdicts = []
    for campaign in campaigns:
        if not campaign.in_schedule(event.occurred_at):
            verdicts.append(
                _Verdict(campaign, Outcome.OUTSIDE_SCHEDULE, None, "outside the campaign's dates")
            )
            continue
        key = id(campaign.env)
        if key not in activations:
            facts = context.facts.get(event.id, {})
            activations[key] = campaign.env.activation(
                data, {spec.name: facts[spec] for spec in campaign.facts}
            )
        verdicts.append(_rule_verdict(campaign, activations[key], event.context, places))
    return verdicts


def _rule_verdict(campaign: CompiledCampaign, activation, context: dict, places: int) -> _Verdict:
    try:
        matched, why = campaign.matches(activation)
        if not matched:
            return _Verdict(campaign, Outcome.CONDITION_FALSE, None, why)
        amount = campaign.amount(activation, context, places)
    except RuleRuntimeError as exc:
        return _Verdict(campaign, Outcome.ERROR, None, str(exc))
    if amount <= 0:
        return _Verdict(campaign, Outcome.ZERO_AMOUNT, None, f"the computed reward is {amount}")
    return _Verdict(campaign, None, amount, "")


# --- Phase 2: issuance, under the counter locks ---------------------------------------------


def _issue(events, verdicts, context: _Context, candidates) -> dict[uuid.UUID, list[dict]]:
    # Lock first: what is read after the lock (earlier rewards, user counters) is current.
    ledger = Ledger(set(candidates), {e.mode for e in events}, {e.end_user_id for e in events})
    already_rewarded = set(
        Reward.objects.filter(trigger_event__in=events).values_list(
            "campaign_id", "trigger_event_id"
        )
    )
    issued_at = timezone.now()
    rewards: list[_NewReward] = []
    made: dict[uuid.UUID, list[dict]] = {}
    for event in events:
        taken_by_exclusive = False
        decisions = []
        for verdict in verdicts[event.id]:
            campaign = verdict.campaign
            outcome, amount, message = verdict.outcome, verdict.amount, verdict.message
            if (campaign.id, event.id) in already_rewarded:
                outcome, amount, message = (
                    Outcome.REWARDED,
                    None,
                    "already rewarded by an earlier evaluation",
                )
            elif outcome == Outcome.OUTSIDE_SCHEDULE:
                pass
            elif taken_by_exclusive:
                outcome, amount = Outcome.SKIPPED_EXCLUSIVE, None
                message = "an exclusive campaign already rewarded it"
            elif outcome is None:
                zone = context.units[event.partnership_id][2]
                outcome, message, user_periods = _reserve(ledger, campaign, event, amount, zone)
                if outcome == Outcome.REWARDED:
                    rewards.append(
                        _reward(event, campaign, context, amount, issued_at, user_periods)
                    )
                else:
                    amount = None
            if outcome == Outcome.REWARDED:
                taken_by_exclusive |= campaign.exclusive
            decisions.append(
                {
                    "campaign_id": str(campaign.id),
                    "campaign": campaign.slug,
                    "outcome": outcome,
                    "amount": None if amount is None else str(amount),
                    "message": message,
                }
            )
        made[event.id] = decisions
    ledger.save()
    _insert(rewards)
    webhook_deliveries_create(event_type="reward.issued", rewards=rewards)
    return made


def _reserve(
    ledger: Ledger, campaign, event, amount: Decimal, zone: ZoneInfo
) -> tuple[Outcome, str, list[str]]:
    limits = campaign.limits
    period = period_key(limits.period, event.occurred_at, zone) if limits.period else ""
    blocked = ledger.check(campaign, event.mode, event.end_user_id, period, amount)
    if blocked:
        return blocked, f"a reward of {amount} would exceed the campaign's limit", []
    user_periods = ledger.record(campaign, event.mode, event.end_user_id, period, amount)
    return Outcome.REWARDED, "", user_periods


def _reward(
    event, campaign: CompiledCampaign, context: _Context, amount, issued_at, user_periods
) -> _NewReward:
    return _NewReward(
        uuid.uuid4(),
        event.partnership_id,
        campaign.id,
        event.id,
        event.end_user_id,
        amount,
        Decimal(0),
        context.units[event.partnership_id][0],
        event.mode,
        Reward.Status.ISSUED,
        issued_at,
        event.occurred_at,
        campaign.version,
        user_periods,
    )


_COPY_REWARDS = (
    "COPY rewards_reward (id, partnership_id, campaign_id, trigger_event_id, end_user_id, "
    "amount, reversed_amount, unit, mode, status, issued_at, occurred_at, campaign_version, "
    "user_periods) "
    "FROM STDIN"
)


def _insert(rewards: list[_NewReward]) -> None:
    """COPY: thousands of rewards per batch, ~20x faster than bulk_create here."""
    if not rewards:
        return
    with connection.cursor() as cursor, cursor.copy(_COPY_REWARDS) as copy:
        for reward in rewards:
            copy.write_row(reward)
