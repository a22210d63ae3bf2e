"""Evaluating claimed trigger events against their campaigns and issuing rewards.

The processor of ``triggers.services.processing``: runs inside its batch transaction, and
returns an ``EventOutcome`` per event that it writes with the rewards and counters, together or
not at all. It works in two phases:

1. **Rules**, without any campaign lock: schedule, condition (CEL) and amount for every
   (event, campaign). This is the CPU-heavy part, so concurrent workers overlap here.
2. **Issuance**, under the campaigns' counter locks (``Ledger``): in priority order per event,
   exclusivity, earlier rewards, budgets and caps decide, then rewards are written.

What decides is pure and lives in campaigns (``campaigns.judge``: ``event_judge`` for phase 1,
``event_settle`` for phase 2, ``campaigns.engine.limits_check`` for the limits), so a dry run
gives the same decisions; this module loads, locks and writes. What the rules read is loaded by
``evaluation_inputs_load`` and judged by ``event_verdicts``, which the dry run
(``rewards.simulation.dryrun``) calls too. Every candidate campaign gets a
decision on the event (``campaigns.decisions``), a campaign that no longer compiles included;
a user blocked in Pilot gets ``user_blocked`` from every one (read with the users' attributes,
one query per batch).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from campaigns.candidates import Listing, candidate_list_get_or_create
from campaigns.decisions import Decision, Outcome
from campaigns.engine import CompiledCampaign, InvalidCampaign
from campaigns.facts import facts_for_events
from campaigns.judge import (
    EventValue,
    Sieve,
    Verdict,
    event_judge,
    event_judge_sparse,
    event_settle,
)
from campaigns.selectors import campaign_list_active
from config.logs import event_extra
from config.metrics import rewards_issued
from partnerships.models import EndUser, Partnership
from triggers.models import Trigger, TriggerEvent
from triggers.services.processing import EventOutcome

from ..models import Reward
from ..reports.maintain import Issued, reports_record_issued
from ..webhooks import WebhookEventType, webhook_event_emit
from .ledger import Ledger
from .notices import campaign_budgets_exhausted_record

logger = logging.getLogger(__name__)


class _NewReward(NamedTuple):
    """A reward to COPY in: a plain row, ~10x cheaper to build than a model instance. Its
    fields are the COPY's columns (``_COPY_REWARDS``; a test holds them to the model); two of
    them in the COPY's text already, which psycopg writes as they are (its dumpers of UUIDs
    and lists are Python, ~9 rewards per event with 100 campaigns)."""

    id: uuid.UUID
    partnership_id: uuid.UUID
    campaign_id: str  # the campaign's key: its id as text
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
    user_periods: str  # an array literal, e.g. {"","2026-11-23"} (periods are plain text)


@dataclass
class EvaluationInputs:
    """What the rules of a batch read, loaded once."""

    campaigns: dict[int, list[CompiledCampaign | InvalidCampaign]]
    users: dict[uuid.UUID, dict]
    blocked: set[uuid.UUID]  # users blocked in Pilot: they earn nothing
    trigger_names: dict[int, str]
    units: dict[uuid.UUID, tuple[str, int, ZoneInfo]]  # unit, decimal places, time zone
    facts: dict[uuid.UUID, dict]


def trigger_events_evaluate(events: list[TriggerEvent]) -> list[EventOutcome]:
    """The queue's processor: one frozen outcome per event; writes rewards, counters and
    webhook rows in the caller's (the batch's) transaction."""
    campaigns = {
        trigger_id: campaign_list_active(trigger_id=trigger_id)
        for trigger_id in {event.trigger_id for event in events}
    }
    if not any(campaigns.values()):
        return [EventOutcome(event.id, TriggerEvent.Status.PROCESSED) for event in events]
    compiled = {
        campaign.id: campaign
        for listed in campaigns.values()
        for campaign in listed
        if isinstance(campaign, CompiledCampaign)
    }
    inputs = evaluation_inputs_load(events=events, campaigns=campaigns)
    sieves = {trigger_id: Sieve(listed) for trigger_id, listed in campaigns.items()}
    results: list[EventOutcome | None] = [None] * len(events)
    judged: list[tuple[int, TriggerEvent, list[Verdict]]] = []
    for index, event in enumerate(events):
        try:
            verdicts = event_verdicts(event, inputs, sieves[event.trigger_id])
            judged.append((index, event, verdicts))
        except (SoftTimeLimitExceeded, MemoryError):
            raise  # the worker's trouble, not this event's: the whole attempt is charged
        except Exception as exc:  # a bug, not a rule error: fail this event, keep the batch
            logger.exception(
                "Evaluating trigger event %s failed", event.id, extra=event_extra(event.id)
            )
            results[index] = EventOutcome(
                event.id, TriggerEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"
            )
    listings = _listings(judged, sieves)
    decided = _issue(judged, inputs, compiled, listings)
    for (index, event, _), decisions in zip(judged, decided, strict=True):
        results[index] = EventOutcome(event.id, TriggerEvent.Status.PROCESSED, "", decisions)
    return results


def trigger_events_failed_notify(events: list[TriggerEvent]) -> None:
    """``trigger_event.failed`` webhooks: the queue's ``on_failed``, in the transaction that
    fails the events (the one place this webhook is sent from)."""
    webhook_event_emit(event_type=WebhookEventType.TRIGGER_EVENT_FAILED, subjects=events)


def evaluation_inputs_load(
    *, events: list[TriggerEvent], campaigns: dict[int, list[CompiledCampaign | InvalidCampaign]]
) -> EvaluationInputs:
    """Users' attributes, trigger names, units and facts for judging ``events`` against
    ``campaigns`` (their candidates, by trigger id). Events may be unsaved (a dry run's)."""
    specs = list(  # each distinct fact once: 25 campaigns may read one
        dict.fromkeys(
            spec
            for listed in campaigns.values()
            for campaign in listed
            if isinstance(campaign, CompiledCampaign)
            for spec in campaign.facts
        )
    )
    users = list(
        EndUser.objects.filter(id__in={e.end_user_id for e in events}).values_list(
            "id", "attributes", "blocked_at"
        )
    )
    return EvaluationInputs(
        campaigns=campaigns,
        users={pk: attributes for pk, attributes, _ in users},
        blocked={pk for pk, _, blocked_at in users if blocked_at is not None},
        trigger_names=dict(Trigger.objects.filter(id__in=campaigns).values_list("id", "name")),
        units={
            pk: (unit, places, ZoneInfo(zone))
            for pk, unit, places, zone in Partnership.objects.filter(
                id__in={e.partnership_id for e in events}
            ).values_list("id", "reward_unit", "reward_decimal_places", "time_zone")
        },
        facts=facts_for_events(events=events, specs=specs) if specs else {},
    )


_NO_FACTS: dict = {}


# --- Phase 1: rules (campaigns.judge), no lock ------------------------------------------------


def event_verdicts(
    event: TriggerEvent, inputs: EvaluationInputs, sieve: Sieve | None = None
) -> list[Verdict]:
    """The event's verdicts (``event_judge``); with its trigger's ``sieve``, the workers'
    sparse ones (``event_judge_sparse``: none for a campaign a guard sets aside)."""
    campaigns = inputs.campaigns[event.trigger_id]
    if not campaigns:
        return []
    value = EventValue(
        event.id,
        inputs.trigger_names[event.trigger_id],
        event.context,
        event.tags,
        event.mode,
        event.occurred_at,
        event.received_at,
    )
    user = inputs.users.get(event.end_user_id, {})
    facts = inputs.facts.get(event.id, _NO_FACTS)
    places = inputs.units[event.partnership_id][1]
    blocked = event.end_user_id in inputs.blocked if inputs.blocked else False
    if sieve is not None:
        return event_judge_sparse(
            sieve, value, user=user, facts=facts, places=places, blocked=blocked
        )
    return event_judge(campaigns, value, user=user, facts=facts, places=places, blocked=blocked)


# --- Phase 2: issuance, under the counter locks ---------------------------------------------


def _listings(judged, sieves: dict[int, Sieve]) -> list[Listing | None]:
    """Each judged event's candidate list (stored, ``campaigns.candidates``): its trigger's
    campaigns, or those still judging it (a late event some have stopped judging). Before
    any counter lock; new lists are created in the order of their campaign ids, the same in
    every worker, so two batches creating the same two lists wait for each other in turn."""
    keys: list[tuple | None] = []
    lists: dict[tuple, Sequence] = {}
    whole: dict[int, tuple] = {}  # trigger id -> the key of all its candidates
    for _, event, _ in judged:
        sieve = sieves[event.trigger_id]
        candidates = sieve.judged(event.received_at)
        if not candidates:
            keys.append(None)
            continue
        if candidates is sieve.campaigns:
            key = whole.get(event.trigger_id)
            if key is None:
                key = whole[event.trigger_id] = tuple(c.key for c in candidates)
        else:
            key = tuple(campaign.key for campaign in candidates)
        keys.append(key)
        lists.setdefault(key, candidates)
    stored = {key: candidate_list_get_or_create(campaigns=lists[key]) for key in sorted(lists)}
    return [None if key is None else stored[key] for key in keys]


def _issue(judged, inputs: EvaluationInputs, compiled, listings) -> list:
    """Settles each judged event's verdicts (``campaigns.judge.event_settle``) against the
    locked counters; returns their decisions in stored form, in the same order."""
    events = [event for _, event, _ in judged]
    # Lock first: what is read after the lock (earlier rewards, user counters) is current.
    ledger = Ledger.locked(set(compiled), {e.mode for e in events}, {e.end_user_id for e in events})
    rewarded_before = rewards_earlier(events=events)
    issued_at = timezone.now()
    rewards: list[_NewReward] = []
    decided = []
    for (_, event, verdicts), listing in zip(judged, listings, strict=True):
        unit, _, zone = inputs.units[event.partnership_id]
        of_event = (event.partnership_id, event.id, event.end_user_id, unit, event.mode)

        def reserve(
            campaign: CompiledCampaign, amount: Decimal, event=event, zone=zone, of_event=of_event
        ):
            blocked, user_periods = ledger.reserve(campaign, event, zone, amount)
            if blocked:
                return blocked
            rewards.append(_reward(of_event, event, campaign, amount, issued_at, user_periods))
            return None

        before = rewarded_before.get(event.id, ()) if rewarded_before else ()
        if before:  # a re-evaluation: a campaign that rewarded it before says so, guards or not
            verdicts = event_verdicts(event, inputs)
        decisions = event_settle(verdicts, rewarded_before=before, reserve=reserve)
        facts = inputs.facts.get(event.id)
        decided.append(_packed(verdicts, decisions, facts, listing))
    ledger.save()
    if exhausted := ledger.exhausted():
        campaign_budgets_exhausted_record(exhausted=exhausted, at=issued_at)
    _insert(rewards)
    rewards_issued(modes=(reward.mode for reward in rewards))
    reports_record_issued(issued_at=issued_at, issued=_issued(ledger, events, inputs))
    webhook_event_emit(event_type=WebhookEventType.REWARD_ISSUED, subjects=rewards)
    return decided


def rewards_earlier(*, events: list[TriggerEvent]) -> dict[uuid.UUID, set[uuid.UUID]]:
    """{event id: the campaigns that already rewarded it} (a re-evaluation's)."""
    earlier: dict[uuid.UUID, set] = defaultdict(set)
    for campaign_id, event_id in Reward.objects.filter(trigger_event__in=events).values_list(
        "campaign_id", "trigger_event_id"
    ):
        earlier[event_id].add(campaign_id)
    return earlier


# Outcomes decided before any rule read the facts: they keep none.
_FACTS_NOT_READ = (Outcome.OUTSIDE_SCHEDULE, Outcome.CAMPAIGN_INVALID, Outcome.USER_BLOCKED)


def _packed(
    verdicts: list[Verdict], decisions: list[Decision], facts: dict | None, listing: Listing | None
) -> dict | tuple:
    """The event's decisions in the compact stored form (``campaigns.decisions``): the list
    judged against, and the decisions that are not the common ``condition_false`` with no
    parameters (whose facts' values, if its campaign reads any, the event keeps once). Under
    the counters' locks: the common decision is skipped here, without a call.

    ``verdicts`` may be sparse (``event_judge_sparse``): a campaign of the list without one
    decided the common ``condition_false``."""
    if listing is None:
        return ()
    listed = []
    fact_names, positions = listing.fact_names, listing.positions
    for verdict, decision in zip(verdicts, decisions, strict=True):
        position = positions[verdict.campaign.key]
        if (
            decision.outcome is Outcome.CONDITION_FALSE
            and not decision.params
            and decision.amount is None
            and decision.facts is None
            and (facts is None or fact_names[position] is not None)
        ):
            continue
        listed.append(_with_facts(decision, verdict, facts).packed(position))
    if facts is not None and listing.own_facts and len(verdicts) < len(fact_names):
        listed = _own_facts_listed(listed, verdicts, facts, listing)
    stored = {"candidates": listing.id, "n": len(fact_names), "decisions": listed}
    if facts is not None and listing.facts:
        stored["facts"] = {name: facts[spec] for name, spec in listing.facts.items()}
    return stored


def _own_facts_listed(
    listed: list[tuple], verdicts: list[Verdict], facts: dict, listing: Listing
) -> list[tuple]:
    """``listed`` with the common decision of each campaign that keeps its own facts' values
    (``Listing.own_facts``) and that sparse verdicts left out, in the list's order."""
    judged = {listing.positions[verdict.campaign.key] for verdict in verdicts}
    missing = [position for position in listing.own_facts if position not in judged]
    if not missing:
        return listed
    for position in missing:
        campaign = listing.campaigns[position]
        decision = Decision(campaign.id, Outcome.CONDITION_FALSE)
        listed.append(
            _with_facts(decision, Verdict(campaign, decision.outcome), facts).packed(position)
        )
    return sorted(listed, key=itemgetter(0))


def _with_facts(decision: Decision, verdict: Verdict, facts: dict | None) -> Decision:
    """The decision with the values of its campaign's facts, as its rules saw them (kept for
    Pilot's "why"), when the campaign reads facts."""
    specs = getattr(verdict.campaign, "facts", ())
    if not specs or facts is None or verdict.outcome in _FACTS_NOT_READ:
        return decision
    return decision._replace(facts={spec.name: facts[spec] for spec in specs})


def _issued(ledger: Ledger, events: list, inputs: EvaluationInputs) -> list[Issued]:
    """The batch's rewards per campaign and mode, from the Ledger's totals: a campaign is of one
    trigger, and so of one partnership and unit."""
    triggers = {
        campaign.id: trigger_id
        for trigger_id, listed in inputs.campaigns.items()
        for campaign in listed
    }
    partnerships = {event.trigger_id: event.partnership_id for event in events}
    issued = []
    for campaign_id, mode, count, amount in ledger.issued():
        trigger_id = triggers[campaign_id]
        partnership_id = partnerships[trigger_id]
        unit = inputs.units[partnership_id][0]
        issued.append(Issued(partnership_id, mode, trigger_id, campaign_id, unit, count, amount))
    return issued


_ZERO = Decimal(0)


def _reward(
    of_event: tuple, event, campaign: CompiledCampaign, amount, issued_at, user_periods
) -> _NewReward:
    """``of_event``: the event's partnership, id, user, unit and mode, read once per event."""
    partnership_id, event_id, end_user_id, unit, mode = of_event
    return _NewReward(
        uuid.uuid4(),
        partnership_id,
        campaign.key,
        event_id,
        end_user_id,
        amount,
        _ZERO,
        unit,
        mode,
        Reward.Status.ISSUED,
        issued_at,
        event.occurred_at,
        campaign.version,
        _text_array(user_periods),
    )


def _text_array(items: list[str]) -> str:
    """A PostgreSQL text[] literal (what reversals read back to restore per-user counters):
    each element quoted, its backslashes and quotes escaped (period keys have none today)."""
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{item}"' for item in quoted) + "}"


_COPY_REWARDS = f"COPY {Reward._meta.db_table} ({', '.join(_NewReward._fields)}) FROM STDIN"


def _insert(rewards: list[_NewReward]) -> None:
    """COPY: thousands of rewards per batch, ~20x faster than bulk_create here."""
    if not rewards:
        return
    with connection.cursor() as cursor, cursor.copy(_COPY_REWARDS) as copy:
        for reward in rewards:
            copy.write_row(reward)
