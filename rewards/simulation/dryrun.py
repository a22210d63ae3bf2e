"""A dry run: what the workers would decide about one event now, written nowhere.

It takes the workers' path without their writes: the trigger's active campaigns as the workers
compile them (``campaign_list_active``), the same inputs (``evaluation_inputs_load``: user
attributes, units, facts), the same rules (``event_verdicts``) and the same settling
(``event_settle``) against the same counters, read unlocked (``Ledger.read``) and counted in
memory. So its decisions are the workers' decisions on the same state, unless an event is
processed between the two. A campaign being edited takes part with its unsaved values, in its
place by priority.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from campaigns.compiler import compile_or_invalid
from campaigns.decisions import Decision, outcome_label
from campaigns.engine import CompiledCampaign, InvalidCampaign, Limits, Usage, period_key
from campaigns.judge import event_settle
from campaigns.models import Campaign
from campaigns.selectors import (
    campaign_list_active,
    campaign_spec,
    end_grace_days,
    trigger_schemas,
)
from campaigns.services import DATES_FROM, DATES_UNTIL
from config.errors import field_error, validation_error
from partnerships.models import EndUser
from triggers.models import Trigger, TriggerEvent

from ..services.evaluation import evaluation_inputs_load, event_verdicts, rewards_earlier
from ..services.ledger import Ledger

Candidate = CompiledCampaign | InvalidCampaign


@dataclass(frozen=True)
class LimitSeen:
    """One limit of a campaign and where its counter stood before this event."""

    name: str  # e.g. "Budget"
    limit: str
    used: str


@dataclass(frozen=True)
class DryRunDecision:
    campaign_id: uuid.UUID
    slug: str
    name: str
    edited: bool  # the campaign being edited, with its unsaved values
    outcome: str
    label: str  # the outcome in words, e.g. "Budget exhausted"
    message: str
    amount: Decimal | None  # issued
    computed: Decimal | None  # what the rule computed, before the limits
    facts: dict[str, int | float]
    limits: list[LimitSeen]


@dataclass(frozen=True)
class DryRun:
    event: TriggerEvent  # unsaved for a sample
    sample: bool
    user_known: bool
    unit: str
    decisions: list[DryRunDecision]
    edited_elsewhere: str = ""  # why the edited campaign is not a candidate, if it is not


def dry_run_time_error(occurred_at: datetime | None) -> str | None:
    """Why a sample cannot have occurred at ``occurred_at`` (None: it can). Within campaigns'
    dates: a time near the ends of Python's calendar has no day in some zones (a period cap's
    day), and no campaign runs outside them."""
    if occurred_at is None or DATES_FROM <= occurred_at < DATES_UNTIL:
        return None
    return f"A time from {DATES_FROM.year} to {DATES_UNTIL.year - 1} (campaigns' dates)"


def dry_run_sample(
    *,
    trigger: Trigger,
    external_user_id: str,
    context: dict,
    mode: str = TriggerEvent.Mode.LIVE,
    occurred_at: datetime | None = None,
    tags: dict | None = None,
) -> TriggerEvent:
    """An event as the ingest API would store it, not saved: its user is the partnership's
    user with this id (or one never seen: no attributes, no history, no counters). A time
    out of ``dry_run_time_error``'s bounds is 422 at ``occurred_at``."""
    if message := dry_run_time_error(occurred_at):
        raise validation_error([field_error("occurred_at", "out_of_range", message)])
    now = timezone.now()
    user = EndUser.objects.filter(
        partnership_id=trigger.partnership_id, external_user_id=external_user_id
    ).first()
    return TriggerEvent(
        id=uuid.uuid4(),
        partnership_id=trigger.partnership_id,
        trigger=trigger,
        end_user=user,
        context=context,
        mode=mode,
        tags=tags or {},
        occurred_at=occurred_at or now,
        received_at=now,
        deliver_at=now,
    )


def trigger_event_dry_run(*, event: TriggerEvent, edited: Campaign | None = None) -> DryRun:
    """Each candidate campaign's decision on ``event`` (stored, or a ``dry_run_sample``), with
    the facts it saw and its limits; ``edited``: a campaign with unsaved values, judged in
    place of its saved version."""
    candidates = list(campaign_list_active(trigger_id=event.trigger_id))
    elsewhere = ""
    if edited is not None:
        if edited.trigger_id == event.trigger_id:
            candidates = _with_edited(candidates, edited)
        else:
            elsewhere = f"The campaign being edited is on another trigger ({edited.trigger})."
    inputs = evaluation_inputs_load(events=[event], campaigns={event.trigger_id: candidates})
    verdicts = event_verdicts(event, inputs)
    _, places, zone = inputs.units[event.partnership_id]
    compiled = {c.id for c in candidates if isinstance(c, CompiledCampaign)}
    ledger = Ledger.read(compiled, {event.mode}, {event.end_user_id})
    seen = {
        verdict.campaign.id: _limits(verdict.campaign, ledger, event, zone, places)
        for verdict in verdicts
        if isinstance(verdict.campaign, CompiledCampaign)
    }

    def reserve(campaign: CompiledCampaign, amount: Decimal):
        return ledger.reserve(campaign, event, zone, amount)[0]  # in memory only

    sample = event._state.adding
    earlier = set() if sample else rewards_earlier(events=[event]).get(event.id, set())
    decisions = event_settle(verdicts, rewarded_before=earlier, reserve=reserve)
    names = dict(
        Campaign.objects.filter(id__in=[v.campaign.id for v in verdicts]).values_list("id", "name")
    )
    facts = inputs.facts.get(event.id, {})
    edited_id = edited.id if edited is not None and not elsewhere else None
    if edited_id is not None:
        names[edited_id] = edited.name
    return DryRun(
        event=event,
        sample=sample,
        user_known=event.end_user_id is not None,
        unit=inputs.units[event.partnership_id][0],
        decisions=[
            _decision(
                verdict.campaign,
                decision,
                verdict.amount,
                name=names.get(verdict.campaign.id, ""),
                edited=verdict.campaign.id == edited_id,
                facts=facts,
                limits=seen.get(verdict.campaign.id, []),
            )
            for verdict, decision in zip(verdicts, decisions, strict=True)
        ],
        edited_elsewhere=elsewhere,
    )


def _with_edited(candidates: list[Candidate], edited: Campaign) -> list[Candidate]:
    """The candidates with the edited campaign compiled from its values, in the workers'
    order (priority, highest first, then oldest first: ``Campaign.Meta.ordering``)."""
    spec = campaign_spec(campaign=edited, grace_days=end_grace_days(partnership=edited.partnership))
    mine = compile_or_invalid(spec, trigger_schemas(partnership_id=edited.partnership_id))
    others = [c for c in candidates if c.id != edited.id]
    created = dict(
        Campaign.objects.filter(id__in=[c.id for c in others]).values_list("id", "created_at")
    )
    created[edited.id] = edited.created_at or timezone.now()
    listed = [*others, mine]
    return sorted(listed, key=lambda c: (-c.priority, created[c.id]))


def _limits(campaign: CompiledCampaign, ledger: Ledger, event, zone, places) -> list[LimitSeen]:
    """Each limit of the campaign and its counter before this event, as the ledger reads it."""
    limits: Limits = campaign.limits
    period = period_key(limits.period, event.occurred_at, zone) if limits.period else ""
    usage: Usage = ledger.usage(campaign, event.mode, event.end_user_id, period)
    step = Decimal(1).scaleb(-places)

    def money(value) -> str:
        return str(Decimal(value).quantize(step))

    seen = []
    if limits.budget is not None:
        seen.append(LimitSeen("Budget", money(limits.budget), f"{money(usage.spent)} spent"))
    if limits.max_rewards is not None:
        seen.append(LimitSeen("Rewards", str(limits.max_rewards), f"{usage.rewards} issued"))
    if limits.max_rewards_per_user is not None:
        seen.append(
            LimitSeen(
                "Rewards per user",
                str(limits.max_rewards_per_user),
                f"{usage.user_rewards} to this user",
            )
        )
    if limits.max_amount_per_user is not None:
        seen.append(
            LimitSeen(
                "Amount per user",
                money(limits.max_amount_per_user),
                f"{money(usage.user_amount)} to this user",
            )
        )
    if limits.max_rewards_per_user_per_period is not None:
        seen.append(
            LimitSeen(
                f"Rewards per user per {limits.period}",
                str(limits.max_rewards_per_user_per_period),
                f"{usage.period_rewards} to this user in {period}",
            )
        )
    return seen


def _decision(
    campaign: Candidate,
    decision: Decision,
    computed: Decimal | None,
    *,
    name: str,
    edited: bool,
    facts: dict,
    limits: list[LimitSeen],
) -> DryRunDecision:
    specs = campaign.facts if isinstance(campaign, CompiledCampaign) else ()
    return DryRunDecision(
        campaign_id=campaign.id,
        slug=campaign.slug,
        name=name,
        edited=edited,
        outcome=decision.outcome.value,
        label=outcome_label(decision.outcome.value),
        message=decision.message,
        amount=decision.amount,
        computed=computed,
        facts={spec.name: facts[spec] for spec in specs if spec in facts},
        limits=limits,
    )
