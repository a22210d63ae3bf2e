"""A replay's judging of its campaign set, event after event: the workers' decisions reduced to
what a backtest reports (each campaign's outcome and each reward's amount), with nothing built
per campaign and event that it does not need.

The workers decide with ``campaigns.judge``: ``event_judge`` (schedule, guards, condition,
amount: a ``Verdict`` per candidate) then ``event_settle`` (exclusivity in priority order, then
limits: a ``Decision`` each). ``SetJudge`` gives the same outcomes and amounts in one loop:

- A campaign whose condition guards (``CompiledCampaign.guards``) an event's context fails is
  ``condition_false`` without being visited: which campaigns each value of the guarded context
  fields leaves in is worked out once per distinct value (``_alive``). Such a campaign's
  ``condition_false`` count is the events judged less its other outcomes (``condition_false``).
- Rules that ``campaigns.native`` runs are called directly, and a fixed reward's amount is
  computed once (``CompiledCampaign.amount`` reads nothing of the event for it).
- Where the native rules cannot answer (a campaign beyond their subset, or an event they are
  unsure of), ``event_judge`` itself judges that campaign and those after it on that event.
- Limits are reserved against the replay's ``Tally`` (``campaigns.engine.limits_check``).
- After an exclusive campaign rewards, every later candidate is ``skipped_exclusive`` unless
  outside its schedule or invalid, as ``event_settle`` decides, without being judged.

``tests/rewards/test_backtest.py`` holds it to the workers' stored decisions.
"""

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from campaigns.decisions import Outcome
from campaigns.engine import CompiledCampaign, InvalidCampaign, RuleRuntimeError
from campaigns.judge import EventValue, event_judge
from campaigns.native import Scope, Unsure

from .events import EventRow
from .tally import Tally

REWARDED = Outcome.REWARDED
CONDITION_FALSE = Outcome.CONDITION_FALSE
ZERO_AMOUNT = Outcome.ZERO_AMOUNT
ERROR = Outcome.ERROR
OUTSIDE_SCHEDULE = Outcome.OUTSIDE_SCHEDULE
SKIPPED_EXCLUSIVE = Outcome.SKIPPED_EXCLUSIVE
CAMPAIGN_INVALID = Outcome.CAMPAIGN_INVALID
USER_BLOCKED = Outcome.USER_BLOCKED
_UNSURE = object()  # the native rules cannot answer: event_judge decides
_MAX_CACHED = 4096  # distinct guard values whose campaigns are kept
_COERCED = ("number", "integer")  # the JSON types ContextField.coerce changes values of


@dataclass
class Totals:
    """One campaign's decisions in a replay (``condition_false`` not counted where implicit)."""

    rewards: int = 0
    amount: Decimal = Decimal(0)
    outcomes: Counter = field(default_factory=Counter)


class _Entry:
    """One campaign of the set, with what its judging reads, worked out once."""

    __slots__ = (
        "campaign",
        "dated",
        "exclusive",
        "fixed",
        "guards",
        "implicit",
        "index",
        "invalid",
        "key",
        "native",
        "skippable",
        "subject",
        "totals",
        "until",
    )

    def __init__(self, index: int, campaign, subject_key: str, places: int) -> None:
        self.index, self.campaign, self.key = index, campaign, campaign.key
        self.until = campaign.candidate_until
        self.exclusive = campaign.exclusive
        self.subject = campaign.key == subject_key
        self.totals = Totals()
        self.invalid = isinstance(campaign, InvalidCampaign)
        compiled = not self.invalid
        self.dated = compiled and (campaign.starts_at is not None or campaign.ends_at is not None)
        # A candidate for every event: its condition_false is what its other outcomes leave.
        self.implicit = compiled and self.until is None
        # Left out by the guard index when its guards fail (the schedule is checked first).
        self.skippable = self.implicit and not self.dated and bool(campaign.guards)
        self.guards = () if self.skippable or not compiled else campaign.guards
        self.native = campaign.native if compiled else None
        self.fixed = None
        if self.native is not None and campaign.reward_type == "fixed":
            self.fixed = _paid(campaign, {}, places, None)


def _paid(campaign: CompiledCampaign, context: dict, places: int, evaluated) -> tuple:
    """(outcome, amount) as ``campaigns.judge._paid`` decides: None and the amount if due."""
    try:
        amount = campaign.amount(None, context, places, evaluated)
    except RuleRuntimeError:
        return ERROR, None
    if amount <= 0:
        return ZERO_AMOUNT, None
    return None, amount


def _bound_fields(env, reads: frozenset) -> list[tuple]:
    """The declared fields of ``env`` the native rules read: (variable, field name, field,
    whether its type coerces a value, whether it is a user attribute)."""
    declared = [("context", field, False) for field in env.fields]
    declared += [("user", field, True) for field in env.user_fields]
    return [
        (f"{prefix}.{field.name}", field.name, field, field.json_type in _COERCED, in_user)
        for prefix, field, in_user in declared
        if f"{prefix}.{field.name}" in reads
    ]


def _unmet(guards: tuple, context: Mapping) -> bool:
    """As ``campaigns.judge``: a guarded field holds a string other than its literal."""
    for name, literal in guards:
        value = context.get(name)
        if value.__class__ is str and value != literal:
            return True
    return False


class SetJudge:
    """Judges events against a replay's campaigns (in the workers' order) and counts what each
    decided into its ``Totals``; ``on_subject(row, outcome, amount)`` hears every decision of
    the subject campaign but its implicit ``condition_false``."""

    def __init__(
        self,
        campaigns: list,
        *,
        subject_key: str,
        trigger_name: str,
        mode: str,
        places: int,
        zone,
        tally: Tally,
        on_subject: Callable[[EventRow, Outcome, Decimal | None], None],
    ) -> None:
        self.entries = tuple(_Entry(n, c, subject_key, places) for n, c in enumerate(campaigns))
        self.trigger_name, self.mode, self.places, self.zone = trigger_name, mode, places, zone
        self.tally, self.on_subject = tally, on_subject
        self.events = 0
        # {event id: [(key, outcome, amount)]} but implicit condition_false (for tests)
        self.record: dict | None = None
        self._fields = tuple(
            dict.fromkeys(n for e in self.entries if e.skippable for n, _ in e.campaign.guards)
        )
        self._alive_cache: dict[Any, tuple[_Entry, ...]] = {}
        # The variables the native rules read: an event binds only those (``_data``).
        self._reads = frozenset(
            name
            for e in self.entries
            if e.native is not None
            for native in e.native
            if native is not None
            for name in native.reads
        )
        self._bound: dict[int, list[tuple]] = {}  # by id(env): its fields read

    def condition_false(self, entry: _Entry) -> int:
        """The campaign's condition_false decisions, counted or implicit."""
        counted = entry.totals.outcomes[CONDITION_FALSE]
        if not entry.implicit:
            return counted
        return self.events - sum(entry.totals.outcomes.values()) + counted

    # --- Per event ---------------------------------------------------------------------------

    def judge(
        self,
        rows: list[EventRow],
        *,
        attributes: Mapping,
        blocked: set,
        facts_of: Callable[[EventRow], Mapping] | None,
    ) -> None:
        alive = self._alive
        for row in rows:
            if row.end_user_id in blocked:
                self._blocked(row)
            else:
                entries = alive(row.context)
                if entries:
                    self._event(row, entries, attributes, facts_of)
        self.events += len(rows)

    def _alive(self, context: Mapping) -> tuple[_Entry, ...]:
        """The campaigns to visit for this context, in order: all but those its guarded fields
        leave out."""
        fields = self._fields
        if not fields:
            return self.entries
        if len(fields) == 1:
            key = context.get(fields[0])
            if key.__class__ is not str:
                key = None
        else:
            key = tuple(
                value if value.__class__ is str else None
                for value in (context.get(name) for name in fields)
            )
        found = self._alive_cache.get(key)
        if found is None:
            values = dict(zip(fields, key if len(fields) > 1 else (key,), strict=True))
            values = {name: value for name, value in values.items() if value is not None}
            found = tuple(
                e for e in self.entries if not (e.skippable and _unmet(e.campaign.guards, values))
            )
            if len(self._alive_cache) < _MAX_CACHED:
                self._alive_cache[key] = found
        return found

    def _event(self, row: EventRow, entries, attributes: Mapping, facts_of) -> None:
        context, received, occurred = row.context, row.received_at, row.occurred_at
        scope = shared = None
        for position, entry in enumerate(entries):
            if entry.until is not None and received >= entry.until:
                continue
            if entry.invalid:
                self._count(entry, row, CAMPAIGN_INVALID)
                continue
            campaign = entry.campaign
            if entry.dated and not campaign.in_schedule(occurred):
                self._count(entry, row, OUTSIDE_SCHEDULE)
                continue
            if entry.guards and _unmet(entry.guards, context):
                outcome, amount = CONDITION_FALSE, None
            elif shared is None and entry.native is not None:
                if scope is None:
                    user = attributes.get(row.end_user_id, {})
                    facts = facts_of(row) if facts_of else {}
                    scope = Scope(self._data(campaign, row, user), facts)
                outcome, amount = self._native(entry, scope, context)
            else:
                outcome = _UNSURE
            if outcome is _UNSURE:
                if shared is None:
                    user = attributes.get(row.end_user_id, {})
                    shared = self._shared(entries[position:], row, user, facts_of)
                verdict = shared[entry.key]
                outcome, amount = verdict.outcome, verdict.amount
            if outcome is None:
                limit = self.tally.reserve(
                    campaign,
                    amount,
                    mode=self.mode,
                    user_id=row.end_user_id,
                    occurred_at=occurred,
                    zone=self.zone,
                )
                if limit is None:
                    self._count(entry, row, REWARDED, amount)
                    if entry.exclusive:
                        self._skip_after(entry, row)
                        return
                    continue
                outcome = limit
            if outcome is CONDITION_FALSE and entry.implicit:
                continue
            self._count(entry, row, outcome)

    def _native(self, entry: _Entry, scope: Scope, context: dict) -> tuple:
        rules = entry.native
        try:
            if rules.condition is not None:
                matched = rules.condition(scope)
                if matched is not True:
                    if matched is False:
                        return CONDITION_FALSE, None
                    raise Unsure
            if entry.fixed is not None:
                return entry.fixed
            evaluated = None if rules.reward is None else (None, rules.reward(scope))
        except Unsure:
            return _UNSURE, None
        return _paid(entry.campaign, context, self.places, evaluated)

    def _data(self, campaign: CompiledCampaign, row: EventRow, user: dict) -> dict:
        """The variables the native rules read, as ``event_data`` binds them (a test holds
        the two equal)."""
        env = campaign.env
        fields = self._bound.get(id(env))
        if fields is None:
            fields = self._bound[id(env)] = _bound_fields(env, self._reads)
        data = {
            "user": user,
            "event.trigger": self.trigger_name,
            "event.occurred_at": row.occurred_at,
            "event.tags": row.tags,
            "event.mode": self.mode,
        }
        context = row.context
        for key, name, declared, coerced, in_user in fields:
            value = (user if in_user else context).get(name)
            if value is None:
                continue
            if coerced:
                try:
                    value = declared.coerce(value)
                except OverflowError:  # unbound, as event_data leaves it
                    continue
            data[key] = value
        return data

    def _shared(self, entries, row: EventRow, user: dict, facts_of) -> dict:
        """``event_judge``'s verdicts for these campaigns, by key (candidates only)."""
        event = EventValue(
            row.id,
            self.trigger_name,
            row.context,
            row.tags,
            self.mode,
            row.occurred_at,
            row.received_at,
        )
        verdicts = event_judge(
            [entry.campaign for entry in entries],
            event,
            user=user,
            facts=facts_of(row) if facts_of else {},
            places=self.places,
            native=True,
        )
        return {verdict.campaign.key: verdict for verdict in verdicts}

    def _skip_after(self, taken: _Entry, row: EventRow) -> None:
        """An exclusive campaign rewarded: the later candidates, as ``event_settle`` says."""
        received, occurred = row.received_at, row.occurred_at
        for entry in self.entries[taken.index + 1 :]:
            if entry.until is not None and received >= entry.until:
                continue
            if entry.invalid:
                self._count(entry, row, CAMPAIGN_INVALID)
            elif entry.dated and not entry.campaign.in_schedule(occurred):
                self._count(entry, row, OUTSIDE_SCHEDULE)
            else:
                self._count(entry, row, SKIPPED_EXCLUSIVE)

    def _blocked(self, row: EventRow) -> None:
        received = row.received_at
        for entry in self.entries:
            if entry.until is None or received < entry.until:
                self._count(entry, row, USER_BLOCKED)

    def _count(self, entry: _Entry, row: EventRow, outcome: Outcome, amount=None) -> None:
        totals = entry.totals
        totals.outcomes[outcome] += 1
        if outcome is REWARDED:
            totals.rewards += 1
            totals.amount += amount
        if entry.subject:
            self.on_subject(row, outcome, amount)
        if self.record is not None:
            self.record.setdefault(row.id, []).append((entry.key, outcome, amount))
