"""Judging one event against its trigger's candidate campaigns, and settling the verdicts in
priority order into decisions.

Pure: no database. The workers (``rewards.services.evaluation``) call these with what they
loaded and with a ``reserve`` that checks and counts under the counters' locks; a dry run or a
backtest calls them with values of its own and gets the same decisions and amounts.
"""

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from .decisions import NO_PARAMS, Decision, Outcome, params
from .engine import CompiledCampaign, FactSpec, InvalidCampaign, RuleRuntimeError
from .native import Scope, Unsure
from .rules import event_data

Candidate = CompiledCampaign | InvalidCampaign
EARLIER = params(reason="earlier")


class EventValue(NamedTuple):
    """What the rules read of a trigger event."""

    id: uuid.UUID
    trigger: str  # the trigger's name
    context: dict
    tags: dict
    mode: str
    occurred_at: datetime
    received_at: datetime


class Verdict(NamedTuple):
    """The rules' answer for one (event, campaign): a final outcome, or an amount to issue."""

    campaign: Candidate
    outcome: Outcome | None  # None: eligible, subject to exclusivity and limits
    amount: Decimal | None = None
    params: Mapping[str, Any] = NO_PARAMS


class Sieve:
    """A trigger's candidate campaigns, in order, as the workers judge them sparsely
    (``event_judge_sparse``): for an event, those left once the campaigns a guard certainly
    makes ``condition_false`` are set aside. Built per batch; keeps what it found per value.

    A campaign may be set aside by its first guard when nothing else could decide for it: it
    compiles, has no dates (no ``outside_schedule``, no end after which late events are not
    judged) and comes before the first exclusive campaign (whose reward would make it
    ``skipped_exclusive``)."""

    __slots__ = ("_aside", "_cut", "_fields", "_visits", "campaigns")

    def __init__(self, campaigns: Sequence[Candidate]) -> None:
        self.campaigns = campaigns
        cuts = [c.candidate_until for c in campaigns if c.candidate_until is not None]
        self._cut = min(cuts) if cuts else None
        aside: dict[int, tuple[str, str]] = {}  # position -> (field, literal)
        for position, campaign in enumerate(campaigns):
            if campaign.exclusive:
                break
            if (
                isinstance(campaign, CompiledCampaign)
                and campaign.guards
                and campaign.starts_at is None
                and campaign.ends_at is None
                and campaign.candidate_until is None
            ):
                aside[position] = campaign.guards[0]
        self._aside = aside
        self._fields = tuple(sorted({field for field, _ in aside.values()}))
        self._visits: dict[tuple, Sequence[Candidate]] = {}

    def judged(self, received_at: datetime) -> Sequence[Candidate]:
        """The campaigns that judge an event received at ``received_at`` (``event_judge``
        leaves out those it reached too late for), in order: what its decisions list."""
        if self._cut is None or received_at < self._cut:
            return self.campaigns
        return [
            c
            for c in self.campaigns
            if c.candidate_until is None or received_at < c.candidate_until
        ]

    def visit(self, context: dict) -> Sequence[Candidate]:
        """The campaigns to judge ``context`` against, in order: all but those set aside."""
        if not self._fields:
            return self.campaigns
        if len(self._fields) == 1:  # the common case, without a generator
            value = context.get(self._fields[0])
            values = (value if value.__class__ is str else None,)
        else:
            values = tuple(
                value if (value := context.get(field)).__class__ is str else None
                for field in self._fields
            )
        visit = self._visits.get(values)
        if visit is None:
            known = dict(zip(self._fields, values, strict=True))
            aside = self._aside
            visit = [
                campaign
                for position, campaign in enumerate(self.campaigns)
                if position not in aside
                or known[aside[position][0]] is None
                or known[aside[position][0]] == aside[position][1]
            ]
            if len(self._visits) < _VISITS_KEPT:
                self._visits[values] = visit
        return visit


_VISITS_KEPT = 4096  # distinct values of the guarded fields a sieve keeps what it found for


def event_judge(
    campaigns: Sequence[Candidate],
    event: EventValue,
    *,
    user: dict,
    facts: Mapping[FactSpec, int | float],
    places: int,
    blocked: bool = False,
    native: bool = False,
) -> list[Verdict]:
    """Schedule (at ``occurred_at``), condition and amount for each campaign, in their order;
    none from a campaign the event reached too late for (``candidate_until``).

    ``user``: the end user's attributes; ``facts``: this event's value of each fact the
    campaigns read; ``places``: the reward unit's decimal places; ``blocked``: the user is
    blocked, so every candidate campaign says ``user_blocked`` and no rule runs.

    ``native``: a campaign whose rules ``campaigns.native`` compiles is judged by them, and by
    CEL only for an event they are unsure of (a backtest's many events; the workers judge with
    CEL itself, and a test holds the two to the same verdicts)."""
    return _judge(campaigns, event, user, facts, places, blocked, native, sparse=False)


def event_judge_sparse(
    sieve: Sieve,
    event: EventValue,
    *,
    user: dict,
    facts: Mapping[FactSpec, int | float],
    places: int,
    blocked: bool = False,
) -> list[Verdict]:
    """``event_judge`` of ``sieve.campaigns`` without the verdicts a guard makes
    ``condition_false`` (no parameters, no amount): the common verdict, which ``event_settle``
    turns into the common decision, which the workers' compact form does not list. With a
    hundred campaigns ~90 of them, set aside here without being looked at one by one.

    Every other verdict is there, in order, and all of them once an exclusive campaign may
    reward (its reward makes the later ones ``skipped_exclusive``). Not for a re-evaluation:
    a campaign that rewarded the event before decides again whatever its guards say."""
    visit = sieve.campaigns if blocked else sieve.visit(event.context)
    return _judge(visit, event, user, facts, places, blocked, False, sparse=True)


def _judge(campaigns, event, user, facts, places, blocked, native, sparse) -> list[Verdict]:
    data = scope = None
    activations: dict[int, Any] = {}
    verdicts = []
    received_at, occurred_at, context = event.received_at, event.occurred_at, event.context
    for campaign in campaigns:
        if campaign.candidate_until is not None and received_at >= campaign.candidate_until:
            continue
        if blocked:
            verdicts.append(Verdict(campaign, Outcome.USER_BLOCKED))
            continue
        if isinstance(campaign, InvalidCampaign):
            verdicts.append(_invalid(campaign))
            continue
        if not campaign.in_schedule(occurred_at):
            verdicts.append(Verdict(campaign, Outcome.OUTSIDE_SCHEDULE))
            continue
        if campaign.guards and _unmet(campaign.guards, context):
            if not sparse:
                verdicts.append(Verdict(campaign, Outcome.CONDITION_FALSE))
            continue
        if data is None:  # the same for every campaign of the trigger
            data = event_data(
                campaign.env.fields,
                context=context,
                user=user,
                trigger=event.trigger,
                occurred_at=occurred_at,
                tags=event.tags,
                mode=event.mode,
                user_fields=campaign.env.user_fields,
            )
        verdict = None
        if native and campaign.native is not None:
            scope = scope or Scope(data, facts)
            verdict = _native_rules(campaign, scope, context, places)
        if verdict is None:
            key = id(campaign.env)
            activation = activations.get(key)
            if activation is None:
                activation = activations[key] = campaign.env.activation(
                    data, {spec.name: facts[spec] for spec in campaign.facts}
                )
            verdict = _rules(campaign, activation, context, places)
        verdicts.append(verdict)
        if sparse and campaign.exclusive and verdict.outcome is None:
            sparse = False  # its reward would make every later decision skipped_exclusive
    return verdicts


def _unmet(guards: tuple[tuple[str, str], ...], context: dict) -> bool:
    """A guard of the condition is false for this context: a string that differs from the
    literal it must equal. (Absent, or not a string: the condition is evaluated.)"""
    for field, literal in guards:
        value = context.get(field)
        if value.__class__ is str and value != literal:
            return True
    return False


def _invalid(campaign: InvalidCampaign) -> Verdict:
    errors = "; ".join(f"{field}: {message}" for field, message in campaign.errors.items())
    return Verdict(campaign, Outcome.CAMPAIGN_INVALID, None, params(errors=errors))


def _rules(campaign: CompiledCampaign, activation, context: dict, places: int) -> Verdict:
    try:
        matched, absent = campaign.matches(activation)
    except RuleRuntimeError as exc:
        return Verdict(campaign, Outcome.ERROR, None, exc.params)
    if not matched:
        why = params(reason="absent", detail=absent) if absent else NO_PARAMS
        return Verdict(campaign, Outcome.CONDITION_FALSE, None, why)
    return _paid(campaign, activation, context, places)


def _native_rules(
    campaign: CompiledCampaign, scope: Scope, context: dict, places: int
) -> Verdict | None:
    """``_rules`` by ``campaign.native``; None if it is unsure (then CEL judges)."""
    rules = campaign.native
    try:
        if rules.condition is not None:
            matched = rules.condition(scope)
            if type(matched) is not bool:
                raise Unsure
            if not matched:
                return Verdict(campaign, Outcome.CONDITION_FALSE, None, NO_PARAMS)
        evaluated = None if rules.reward is None else (None, rules.reward(scope))
    except Unsure:
        return None
    return _paid(campaign, None, context, places, evaluated)


def _paid(campaign: CompiledCampaign, activation, context, places, evaluated=None) -> Verdict:
    try:
        amount = campaign.amount(activation, context, places, evaluated)
    except RuleRuntimeError as exc:
        return Verdict(campaign, Outcome.ERROR, None, exc.params)
    if amount <= 0:
        return Verdict(campaign, Outcome.ZERO_AMOUNT, None, params(amount=str(amount)))
    return Verdict(campaign, None, amount)


Reserve = Callable[[CompiledCampaign, Decimal], Outcome | None]


def event_settle(
    verdicts: Sequence[Verdict], *, rewarded_before: Collection[uuid.UUID], reserve: Reserve
) -> list[Decision]:
    """The event's decisions, in priority order: earlier rewards, exclusivity, then limits.

    ``rewarded_before``: campaigns that already rewarded this event (a re-evaluation).
    ``reserve(campaign, amount)``: the limit the reward would break, or None after counting
    it (the workers' ``Ledger``, under the counters' locks; an in-memory tally for a dry run).
    """
    taken_by_exclusive = False
    decisions = []
    for campaign, outcome, amount, why in verdicts:
        if rewarded_before and campaign.id in rewarded_before:
            decision = Decision(campaign.id, Outcome.REWARDED, None, EARLIER)
        elif outcome is Outcome.OUTSIDE_SCHEDULE or outcome is Outcome.CAMPAIGN_INVALID:
            decision = Decision(campaign.id, outcome, None, why)
        elif taken_by_exclusive:
            decision = Decision(campaign.id, Outcome.SKIPPED_EXCLUSIVE)
        elif outcome is None:
            decision = _reserved(campaign, amount, reserve(campaign, amount))
        else:
            decision = Decision(campaign.id, outcome, None, why)
        if decision.outcome is Outcome.REWARDED and campaign.exclusive:
            taken_by_exclusive = True
        decisions.append(decision)
    return decisions


def _reserved(campaign: CompiledCampaign, amount: Decimal, blocked: Outcome | None) -> Decision:
    if blocked is None:
        return Decision(campaign.id, Outcome.REWARDED, amount)
    limits = _limits_named(campaign.limits, blocked)
    if blocked == Outcome.PERIOD_CAP_REACHED:
        return Decision(campaign.id, blocked, None, params(period=campaign.limits.period, **limits))
    return Decision(campaign.id, blocked, None, params(amount=str(amount), **limits))


# The limits each limit outcome may have met (``campaigns.engine.limits_check``).
_LIMITS_OF = {
    Outcome.BUDGET_EXHAUSTED: ("budget",),
    Outcome.COUNT_CAP_REACHED: ("max_rewards",),
    Outcome.USER_CAP_REACHED: ("max_rewards_per_user", "max_amount_per_user"),
    Outcome.PERIOD_CAP_REACHED: ("max_rewards_per_user_per_period",),
}


def _limits_named(limits, outcome: Outcome) -> dict[str, str | int]:
    """The campaign's limits behind ``outcome``, as the decision keeps them (JSON values)."""
    named = {}
    for name in _LIMITS_OF.get(outcome, ()):
        value = getattr(limits, name)
        if value is not None:
            named[name] = format(value.normalize(), "f") if isinstance(value, Decimal) else value
    return named
