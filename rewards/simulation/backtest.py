"""Backtest: a campaign (a draft, or an edited copy of a live one) replayed over the events its
trigger received in a window, with the trigger's other campaigns alongside, issuing nothing.

It decides with the workers' pure code: ``campaigns.judge.event_judge`` and ``event_settle``,
reserving against a ``Tally`` (``campaigns.engine.limits_check`` over in-memory counters keyed
like the real ones). Events are read in keyset chunks in the order they were received; facts
are computed per chunk with one query per fact trigger (``FactHistories``), to the definition of
``campaigns.facts``. ``ASSUMPTIONS`` is what every result states.
"""

import bisect
import dataclasses
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from django.db import connection

from campaigns.compiler import CampaignSpec, compile_campaign
from campaigns.decisions import Decision, Outcome
from campaigns.engine import CompiledCampaign, FactSpec, InvalidCampaign, Limits
from campaigns.facts import EVENT_TABLE, NOT_COUNTED
from campaigns.judge import EventValue, event_judge, event_settle
from campaigns.models import Campaign
from campaigns.selectors import campaign_list_active, trigger_schemas
from partnerships.models import EndUser, Partnership
from triggers.models import Trigger

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


# --- Reading the window in keyset chunks ------------------------------------------------------

# The columns of TriggerEvent read below, by field name (a test holds them to the model).
EVENT_COLUMNS = {
    "id": "id",
    "partnership": "partnership_id",
    "trigger": "trigger_id",
    "end_user": "end_user_id",
    "mode": "mode",
    "status": "status",
    "context": "context",
    "tags": "tags",
    "occurred_at": "occurred_at",
    "received_at": "received_at",
}
_NOT_COUNTED = ", ".join(f"'{status.value}'" for status in NOT_COUNTED)
# Served by event_partnership_idx (partnership, -received_at), read backwards.
_WINDOW = """
  FROM {table}
 WHERE {partnership} = %(partnership_id)s AND {trigger} = %(trigger_id)s AND {mode} = %(mode)s
   AND {received_at} >= %(start)s AND {received_at} < %(end)s
   AND {status} NOT IN ({not_counted})
""".format(table=EVENT_TABLE, not_counted=_NOT_COUNTED, **EVENT_COLUMNS)
_COUNT_SQL = "SELECT count(*)" + _WINDOW
# Times as microseconds since the epoch: ~10x cheaper to read than timestamps through Django's
# time zone loader, and exact (extract gives numeric).
_MICROS = "(extract(epoch FROM {}) * 1000000)::bigint"
_CHUNK_SQL = (
    "SELECT {id}, {end_user}, {context}, {tags}, ".format(**EVENT_COLUMNS)
    + ", ".join(_MICROS.format(EVENT_COLUMNS[name]) for name in ("occurred_at", "received_at"))
    + _WINDOW
    + """
   AND {received_at} >= %(after_at)s AND ({received_at}, {id}) > (%(after_at)s, %(after_id)s)
 ORDER BY {received_at}, {id}
 LIMIT %(size)s""".format(**EVENT_COLUMNS)
)
_BEFORE_ALL = uuid.UUID(int=0)


class EventRow(NamedTuple):
    id: uuid.UUID
    end_user_id: uuid.UUID
    context: dict
    tags: dict
    occurred_at: datetime
    received_at: datetime


def _window(setup: Setup, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "partnership_id": setup.partnership_id,
        "trigger_id": setup.trigger_id,
        "mode": setup.mode,
        "start": start,
        "end": end,
    }


def events_count(*, setup: Setup, start: datetime, end: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, _window(setup, start, end))
        return cursor.fetchone()[0]


def event_chunks(
    *, setup: Setup, start: datetime, end: datetime, size: int
) -> Iterator[list[EventRow]]:
    """The window's events of the subject's trigger and mode, ``size`` at a time, in the order
    received (one query per chunk, after the last key read: nothing else is held)."""
    params = {**_window(setup, start, end), "after_at": start, "after_id": _BEFORE_ALL}
    params["size"] = size
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_CHUNK_SQL, params)
            rows = cursor.fetchall()
        if not rows:
            return
        chunk = [
            EventRow(pk, user, _json(context), _json(tags), _time(occurred), _time(received))
            for pk, user, context, tags, occurred, received in rows
        ]
        yield chunk
        params["after_at"], params["after_id"] = chunk[-1].received_at, chunk[-1].id


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


# The end users' attributes, read for each chunk (the rules' ``user``).
_USERS_SQL = f"SELECT id, attributes FROM {EndUser._meta.db_table} WHERE id = ANY(%s)"  # noqa: S608


def users_attributes(user_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    with connection.cursor() as cursor:
        cursor.execute(_USERS_SQL, [user_ids])
        return {pk: _json(attributes) for pk, attributes in cursor.fetchall()}


# --- Facts, per chunk ---------------------------------------------------------------------------

# Each user's events from their own lower bound (new users: what their facts reach back to;
# users already loaded: where their history ends) up to the chunk's last occurred_at.
_HISTORY_SQL = """
SELECT u.id, (extract(epoch FROM e.{occurred_at}) * 1000000)::bigint{{sums}}
  FROM unnest(%(users)s::uuid[], %(lows)s::timestamptz[]) AS u(id, low)
  JOIN {table} e ON e.{end_user} = u.id
 WHERE e.{trigger} = %(trigger_id)s AND e.{mode} = %(mode)s
   AND e.{occurred_at} > u.low AND e.{occurred_at} <= %(high)s
   AND e.{status} NOT IN ({not_counted})
 ORDER BY u.id, e.{occurred_at}
""".format(table=EVENT_TABLE, not_counted=_NOT_COUNTED, **EVENT_COLUMNS)
# A number in the context is summed; anything else counts as nothing (as campaigns.facts sums).
_SUMMED = (
    ", CASE WHEN jsonb_typeof(e.{context} -> %(field_{n})s) = 'number' "
    "THEN (e.{context} ->> %(field_{n})s)::numeric END"
)
_DAY = 86_400_000_000  # microseconds
# Users whose histories are kept between chunks, per trigger; beyond it they are read again.
MAX_USERS_KEPT = 50_000


class _History:
    """One user's events of one trigger, complete over ``(low, high]``: times in order, and
    running sums per summed field."""

    __slots__ = ("high", "low", "sums", "times")

    def __init__(self, fields: int, low: int) -> None:
        self.low = self.high = low
        self.times: list[int] = []  # occurred_at, microseconds since the epoch
        self.sums: list[list[Decimal]] = [[Decimal(0)] for _ in range(fields)]


class FactHistories:
    """The facts of each chunk's events, equal to what ``campaigns.facts`` computes: over the
    same user's events of the fact's trigger and mode, not cancelled or failed, with
    ``occurred_at`` in ``(occurred_at - window_days, occurred_at]``, whatever order they were
    received in. One query per trigger and chunk reads, per user of the chunk, the events its
    facts reach that were not read for an earlier chunk; histories are kept between chunks
    (at most ``MAX_USERS_KEPT`` users per trigger)."""

    def __init__(self, *, specs: list[FactSpec], mode: str) -> None:
        self.mode = mode
        self.by_trigger: dict[int, list[FactSpec]] = defaultdict(list)
        for spec in specs:
            self.by_trigger[spec.trigger_id].append(spec)
        self.fields = {
            trigger_id: list(dict.fromkeys(s.field for s in listed if s.aggregate == "sum"))
            for trigger_id, listed in self.by_trigger.items()
        }
        self.kept: dict[int, dict[uuid.UUID, _History]] = defaultdict(dict)

    def values(self, rows: list[EventRow]) -> dict[uuid.UUID, dict[FactSpec, int | float]]:
        """{event id: {fact: value}} for a chunk."""
        values: dict[uuid.UUID, dict] = {row.id: {} for row in rows}
        if not rows:
            return values
        occurred = {row.id: _micros(row.occurred_at) for row in rows}
        for trigger_id, specs in self.by_trigger.items():
            fields = self.fields[trigger_id]
            histories = self._read(trigger_id, rows, occurred, max(s.window_days for s in specs))
            for row in rows:
                history, at = histories[row.end_user_id], occurred[row.id]
                for spec in specs:
                    first = bisect.bisect_right(history.times, at - spec.window_days * _DAY)
                    last = bisect.bisect_right(history.times, at)
                    if spec.aggregate == "count":
                        values[row.id][spec] = last - first
                    else:
                        sums = history.sums[fields.index(spec.field)]
                        values[row.id][spec] = float(sums[last] - sums[first])
        return values

    def _read(self, trigger_id: int, rows, occurred, longest: int) -> dict[uuid.UUID, _History]:
        """The chunk's users' histories of one trigger, read where they are not yet complete."""
        kept = self.kept[trigger_id]
        if len(kept) > MAX_USERS_KEPT:
            kept.clear()
        fields = self.fields[trigger_id]
        high = max(occurred.values())
        reach: dict[uuid.UUID, int] = {}  # how far back each user's facts reach
        for row in rows:
            since = occurred[row.id] - longest * _DAY
            reach[row.end_user_id] = min(since, reach.get(row.end_user_id, since))
        wanted: dict[uuid.UUID, _History] = {}
        for user, since in reach.items():
            history = kept.get(user)
            if history is None or history.low > since:
                history = kept[user] = _History(len(fields), since)
            if history.high < high:
                wanted[user] = history
        if wanted:
            self._extend(trigger_id, fields, wanted, high)
        return {user: kept[user] for user in reach}

    def _extend(self, trigger_id, fields, wanted: dict[uuid.UUID, _History], high: int) -> None:
        sums = "".join(_SUMMED.format(n=n, **EVENT_COLUMNS) for n in range(len(fields)))
        params = {
            "users": list(wanted),
            "lows": [_time(history.high) for history in wanted.values()],
            "trigger_id": trigger_id,
            "mode": self.mode,
            "high": _time(high),
        }
        params |= {f"field_{n}": field for n, field in enumerate(fields)}
        with connection.cursor() as cursor:
            cursor.execute(_HISTORY_SQL.format(sums=sums), params)
            for user, at, *amounts in cursor.fetchall():
                history = wanted[user]
                history.times.append(at)
                for running, amount in zip(history.sums, amounts, strict=True):
                    running.append(running[-1] + amount if amount is not None else running[-1])
        for history in wanted.values():
            history.high = high


# --- The replay ----------------------------------------------------------------------------------


@dataclass
class _Totals:
    rewards: int = 0
    amount: Decimal = Decimal(0)
    outcomes: Counter = dataclasses.field(default_factory=Counter)


class Replay:
    """Judges chunks of events in order against one ``Tally``, and sums up what it decided."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.tally = Tally()
        self.events = 0
        self.through: datetime | None = None  # received_at of the last event judged
        # By the campaign's key (its id as a string): a str caches its hash, a UUID does not.
        self._totals: dict[str, _Totals] = {c.key: _Totals() for c in setup.campaigns}
        self._users: set[uuid.UUID] = set()
        self._days: dict[date, list] = {}
        self._first_bites: dict[Outcome, date] = {}
        specs = setup.fact_specs
        self._facts = FactHistories(specs=specs, mode=setup.mode) if specs else None

    def run(self, rows: list[EventRow]) -> list[list[Decision]]:
        """The decisions on each event of the chunk, in its order (the workers' form)."""
        setup = self.setup
        facts = self._facts.values(rows) if self._facts else {}
        users = users_attributes(list({row.end_user_id for row in rows}))
        reserve_in, zone, mode = self.tally.reserve, setup.zone, setup.mode
        decided = []
        for row in rows:
            event = EventValue(
                row.id,
                setup.trigger_name,
                row.context,
                row.tags,
                mode,
                row.occurred_at,
                row.received_at,
            )
            verdicts = event_judge(
                setup.campaigns,
                event,
                user=users.get(row.end_user_id, {}),
                facts=facts.get(row.id, {}),
                places=setup.places,
            )

            def reserve(campaign, amount, row=row):
                return reserve_in(
                    campaign,
                    amount,
                    mode=mode,
                    user_id=row.end_user_id,
                    occurred_at=row.occurred_at,
                    zone=zone,
                )

            decisions = event_settle(verdicts, rewarded_before=(), reserve=reserve)
            self._count(row, verdicts, decisions)
            decided.append(decisions)
        self.events += len(rows)
        if rows:
            self.through = rows[-1].received_at
        return decided

    def _count(self, row: EventRow, verdicts: list, decisions: list[Decision]) -> None:
        """One decision per verdict, in order (``event_settle``)."""
        subject = self.setup.subject.key
        for verdict, decision in zip(verdicts, decisions, strict=True):
            key, outcome = verdict.campaign.key, decision.outcome
            totals = self._totals[key]
            totals.outcomes[outcome] += 1
            if outcome is Outcome.REWARDED:
                totals.rewards += 1
                totals.amount += decision.amount
            if key != subject:
                continue
            if outcome is Outcome.REWARDED:
                self._users.add(row.end_user_id)
                day = self._days.setdefault(self._day(row), [0, Decimal(0)])
                day[0] += 1
                day[1] += decision.amount
            elif outcome in LIMIT_OUTCOMES and outcome not in self._first_bites:
                self._first_bites[outcome] = self._day(row)

    def _day(self, row: EventRow) -> date:
        return row.received_at.astimezone(self.setup.zone).date()

    def results(self, *, total: int, complete: bool) -> dict[str, Any]:
        """What the backtest found, as stored (JSON) and shown."""
        setup, subject = self.setup, self.setup.subject
        mine = self._totals[subject.key]
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
                    "rewards": self._totals[campaign.key].rewards,
                    "amount": str(self._totals[campaign.key].amount),
                    "outcomes": _outcomes(self._totals[campaign.key].outcomes),
                }
                for campaign in setup.campaigns
                if campaign.id != subject.id
            ],
            "assumptions": list(ASSUMPTIONS),
        }


def _outcomes(counts: Counter) -> dict[str, int]:
    return {outcome.value: count for outcome, count in counts.most_common()}


def _iso(day: date | None) -> str | None:
    return day and day.isoformat()
