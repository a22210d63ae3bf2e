"""Backtest: a campaign (a draft, or an edited copy of a live one) replayed over the events its
trigger received in a window, with the trigger's other campaigns alongside, issuing nothing.

It decides as the workers' pure code (``campaigns.judge.event_judge`` and ``event_settle``)
does, in a loop that keeps only what a backtest reports (``judging.SetJudge``: the same rules,
``event_judge`` itself wherever they need CEL), reserving against a ``Tally``
(``campaigns.engine.limits_check`` over in-memory counters keyed like the real ones). Events
are read in keyset chunks in the order they were received
(``events``); facts are computed per chunk to the workers' definition (``facts``).
``ASSUMPTIONS`` is what every result states; ``backtests`` runs it as a stored, bounded run.
"""

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from campaigns.compiler import CampaignSpec, compile_campaign
from campaigns.decisions import Outcome
from campaigns.engine import CompiledCampaign, FactSpec, InvalidCampaign, Limits
from campaigns.models import Campaign
from campaigns.selectors import campaign_list_active, trigger_schemas
from partnerships.models import Partnership
from triggers.models import Trigger

from .events import EventRow, Users, users_read
from .facts import MAX_USERS_KEPT, FactHistories
from .judging import SetJudge, Totals
from .tally import Tally

ASSUMPTIONS = (
    "Counters start at zero at the window's start for every campaign simulated: budgets and "
    "caps count only the rewards of this replay, as if all had started then (rewards really "
    "issued before or during the window are not counted).",
    "Events are replayed in the order they were received; cancelled and failed events are "
    "left out, as the facts leave them out.",
    "The campaign is judged over the whole window: its own start and end dates are not "
    "applied. Its schedule, condition, reward and limits are otherwise as given.",
    "The trigger's other active campaigns are simulated alongside, as the workers load them "
    "now (their current rules, dates, priority, exclusivity and limits, counters from zero).",
    "Facts are computed as of each event's occurred_at over all the user's events stored now; "
    "users' attributes are as they are now.",
    "Users blocked now earn nothing (user_blocked), as if blocked over the whole window.",
)
LIMIT_OUTCOMES = (
    Outcome.BUDGET_EXHAUSTED,
    Outcome.COUNT_CAP_REACHED,
    Outcome.USER_CAP_REACHED,
    Outcome.PERIOD_CAP_REACHED,
)

# --- The campaign as given, kept as JSON ------------------------------------------------------

_DECIMALS = ("reward_value", "reward_min", "reward_max")
_LIMIT_DECIMALS = ("budget", "max_amount_per_user")


def spec_to_json(spec: CampaignSpec) -> dict[str, Any]:
    """The spec backtested, as stored with its result (``spec_from_json`` reads it back)."""
    data = dataclasses.asdict(spec)
    for name in ("id", "partnership_id"):
        data[name] = str(data[name])
    for name in ("starts_at", "ends_at"):
        data[name] = data[name] and data[name].isoformat()
    for name in _DECIMALS:
        data[name] = None if data[name] is None else str(data[name])
    for name in _LIMIT_DECIMALS:
        value = data["limits"][name]
        data["limits"][name] = None if value is None else str(value)
    return data


def spec_from_json(data: dict[str, Any]) -> CampaignSpec:
    limits = dict(data["limits"])
    for name in _LIMIT_DECIMALS:
        limits[name] = None if limits[name] is None else Decimal(limits[name])
    values = {**data, "limits": Limits(**limits)}
    for name in ("id", "partnership_id"):
        values[name] = uuid.UUID(values[name])
    for name in ("starts_at", "ends_at"):
        values[name] = values[name] and datetime.fromisoformat(values[name])
    for name in _DECIMALS:
        values[name] = None if values[name] is None else Decimal(values[name])
    return CampaignSpec(**values)


_NOT_SAVED = datetime.max.replace(tzinfo=UTC)  # a campaign not saved yet is the newest


# --- What a replay needs, loaded once ---------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    subject: CompiledCampaign
    campaigns: list[CompiledCampaign | InvalidCampaign]  # the workers' order, subject included
    partnership_id: uuid.UUID
    trigger_id: int
    trigger_name: str
    mode: str
    places: int
    unit: str
    zone: tzinfo

    @property
    def fact_specs(self) -> list[FactSpec]:
        compiled = [c for c in self.campaigns if isinstance(c, CompiledCampaign)]
        return list(dict.fromkeys(spec for campaign in compiled for spec in campaign.facts))


def backtest_setup(*, spec: CampaignSpec, mode: str) -> Setup:
    """Raises ``campaigns.compiler.CampaignInvalid`` if the spec does not compile. The spec's
    dates are dropped (``ASSUMPTIONS``); the other campaigns are the workers' active list, in
    their order (priority, then age), with the subject in its place among them."""
    undated = dataclasses.replace(spec, starts_at=None, ends_at=None, grace_days=0)
    subject = compile_campaign(undated, trigger_schemas(partnership_id=spec.partnership_id))
    others = [c for c in campaign_list_active(trigger_id=spec.trigger_id) if c.id != spec.id]
    created = dict(
        Campaign.objects.filter(pk__in=[spec.id, *(c.id for c in others)]).values_list(
            "pk", "created_at"
        )
    )
    campaigns = sorted(
        [*others, subject], key=lambda c: (-c.priority, created.get(c.id) or _NOT_SAVED)
    )
    partnership = Partnership.objects.get(pk=spec.partnership_id)
    return Setup(
        subject=subject,
        campaigns=campaigns,
        partnership_id=partnership.pk,
        trigger_id=spec.trigger_id,
        trigger_name=Trigger.objects.values_list("name", flat=True).get(pk=spec.trigger_id),
        mode=mode,
        places=partnership.reward_decimal_places,
        unit=partnership.reward_unit,
        zone=partnership.zone,
    )


# --- The replay ----------------------------------------------------------------------------------


class Replay:
    """Judges chunks of events in order against one ``Tally`` (``judging.SetJudge``), and sums
    up what it decided."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.tally = Tally()
        self.through: datetime | None = None  # received_at of the last event judged
        self._users: set = set()  # rewarded by the subject
        self._known = Users({}, set())  # attributes and blocks of the users read so far
        self._read: set = set()  # their ids, found or not
        self._days: dict[date, list] = {}
        self._first_bites: dict[Outcome, date] = {}
        specs = setup.fact_specs
        self._facts = FactHistories(specs=specs, mode=setup.mode) if specs else None
        self._prepared: dict = {}  # the facts of chunks read ahead, by their first event's id
        self.judge = SetJudge(
            setup.campaigns,
            subject_key=setup.subject.key,
            trigger_name=setup.trigger_name,
            mode=setup.mode,
            places=setup.places,
            zone=setup.zone,
            tally=self.tally,
            on_subject=self._subject_decided,
        )

    @property
    def events(self) -> int:
        return self.judge.events

    def prepare(self, raw_connection, rows: list[EventRow]) -> None:
        """Reads the chunk's facts' histories ahead (``events.event_chunks``'s reader thread)."""
        if self._facts and rows:
            self._prepared[rows[0].id] = self._facts.prepared(rows, raw_connection)

    def run(self, rows: list[EventRow]) -> None:
        """Judges a chunk (the events that follow the last chunk's)."""
        facts_of = self._prepared.pop(rows[0].id, None) if rows else None
        if facts_of is None and self._facts:
            facts_of = self._facts.prepared(rows)
        users = self._users_of(rows)
        self.judge.judge(
            rows, attributes=users.attributes, blocked=users.blocked, facts_of=facts_of
        )
        if rows:
            self.through = rows[-1].received_at

    def _users_of(self, rows: list[EventRow]) -> Users:
        """The chunk's users, read once per replay (at most ``MAX_USERS_KEPT`` kept): their
        attributes as they are now, so a later chunk would read the same (``ASSUMPTIONS``)."""
        users = {row.end_user_id for row in rows}
        if len(self._read) + len(users) > MAX_USERS_KEPT:
            self._known, self._read = Users({}, set()), set()
        unseen = [user for user in users if user not in self._read]
        if unseen:
            read = users_read(unseen)
            self._known.attributes.update(read.attributes)
            self._known.blocked.update(read.blocked)
            self._read.update(unseen)
        return self._known

    def _subject_decided(self, row: EventRow, outcome: Outcome, amount: Decimal | None) -> None:
        if outcome is Outcome.REWARDED:
            self._users.add(row.end_user_id)
            today = self._day(row)
            day = self._days.setdefault(today, [0, Decimal(0)])
            day[0] += 1
            day[1] += amount
            self._used_up(today)
        elif outcome in LIMIT_OUTCOMES and outcome not in self._first_bites:
            self._first_bites[outcome] = self._day(row)

    def _used_up(self, today: date) -> None:
        """A reward that spends the budget to the cent runs it out that day, as the workers'
        ``Ledger`` announces it (``campaign.budget_exhausted``), even if no later event of the
        window is refused for it; the last reward a count cap allows dates it likewise."""
        subject = self.setup.subject
        limits = subject.limits
        if limits.budget is None and limits.max_rewards is None:
            return
        count, spent = self.tally.campaigns[(subject.key, self.setup.mode)]
        if limits.budget is not None and spent >= limits.budget:
            self._first_bites.setdefault(Outcome.BUDGET_EXHAUSTED, today)
        if limits.max_rewards is not None and count >= limits.max_rewards:
            self._first_bites.setdefault(Outcome.COUNT_CAP_REACHED, today)

    def _day(self, row: EventRow) -> date:
        return row.received_at.astimezone(self.setup.zone).date()

    def results(self, *, total: int, complete: bool) -> dict[str, Any]:
        """What the backtest found, as stored (JSON) and shown."""
        setup, subject = self.setup, self.setup.subject
        totals = {entry.key: self._totals(entry) for entry in self.judge.entries}
        mine = totals[subject.key]
        first = self._first_bites
        return {
            "complete": complete,
            "events": self.events,
            "events_total": total,
            "through": self.through and self.through.isoformat(),
            "unit": setup.unit,
            "campaign": {
                "id": str(subject.id),
                "slug": subject.slug,
                "rewards": mine.rewards,
                "amount": str(mine.amount),
                "users": len(self._users),
                "budget_exhausted_on": _iso(first.get(Outcome.BUDGET_EXHAUSTED)),
                "count_cap_reached_on": _iso(first.get(Outcome.COUNT_CAP_REACHED)),
                "limit_bites": {o.value: mine.outcomes.get(o, 0) for o in LIMIT_OUTCOMES},
                "outcomes": _outcomes(mine.outcomes),
            },
            "days": [
                {"day": day.isoformat(), "rewards": count, "amount": str(amount)}
                for day, (count, amount) in sorted(self._days.items())
            ],
            "others": [
                {
                    "id": str(campaign.id),
                    "slug": campaign.slug,
                    "priority": campaign.priority,
                    "exclusive": campaign.exclusive,
                    "rewards": totals[campaign.key].rewards,
                    "amount": str(totals[campaign.key].amount),
                    "outcomes": _outcomes(totals[campaign.key].outcomes),
                }
                for campaign in setup.campaigns
                if campaign.id != subject.id
            ],
            "assumptions": list(ASSUMPTIONS),
        }

    def _totals(self, entry) -> Totals:
        """A campaign's totals with its implicit condition_false counted in."""
        outcomes = +entry.totals.outcomes  # a copy without zeros
        outcomes[Outcome.CONDITION_FALSE] = self.judge.condition_false(entry)
        return Totals(entry.totals.rewards, entry.totals.amount, +outcomes)


def _outcomes(counts: Counter) -> dict[str, int]:
    return {outcome.value: count for outcome, count in counts.most_common()}


def _iso(day: date | None) -> str | None:
    return day and day.isoformat()
