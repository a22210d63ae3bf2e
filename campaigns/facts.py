"""Per-user facts (counts and sums over a user's recent events), one query per fact per batch.

A fact is computed as of the evaluated event's ``occurred_at``: its window is
``(occurred_at - window_days, occurred_at]`` over the same user's events of the fact's trigger
in the same mode, whatever order they arrived in, the evaluated event included. Cancelled and
failed events do not count.

A dry run's sample event is not stored: its facts are the stored history of its user as of its
``occurred_at`` (the same conditions, written once below) plus the sample itself.
"""

import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import connection

from triggers.models import TriggerEvent

from .engine import FactSpec

# The columns of TriggerEvent this query reads, by field name: the one list the SQL below is
# written from (a test holds it to the model), and the statuses that do not count.
EVENT_TABLE = "triggers_triggerevent"
EVENT_COLUMNS = {
    "id": "id",
    "end_user": "end_user_id",
    "trigger": "trigger_id",
    "mode": "mode",
    "occurred_at": "occurred_at",
    "status": "status",
    "context": "context",
}
NOT_COUNTED = (TriggerEvent.Status.CANCELLED, TriggerEvent.Status.FAILED)

# The history of one evaluated event ``e``, formatted from the constants above only (values are
# parameters): the stored events' query names e's columns, a sample's names parameters.
_HISTORY = """
      FROM {table} h
     WHERE h.{end_user} = {{end_user}}
       AND h.{trigger} = %(trigger_id)s
       AND h.{mode} = {{mode}}
       AND h.{occurred_at} > {{occurred_at}} - %(window)s
       AND h.{occurred_at} <= {{occurred_at}}
       AND h.{status} NOT IN ({not_counted})
""".format(
    table=EVENT_TABLE,
    not_counted=", ".join(f"'{status.value}'" for status in NOT_COUNTED),
    **EVENT_COLUMNS,
)
_FACT_SQL = """
SELECT e.{id}, (
    SELECT {{aggregate}} {history}
)
FROM {table} e
WHERE e.{id} = ANY(%(event_ids)s)
""".format(
    table=EVENT_TABLE,
    history=_HISTORY.format(
        end_user=f"e.{EVENT_COLUMNS['end_user']}",
        mode=f"e.{EVENT_COLUMNS['mode']}",
        occurred_at=f"e.{EVENT_COLUMNS['occurred_at']}",
    )
    .replace("{", "{{")
    .replace("}", "}}"),
    **EVENT_COLUMNS,
)
_SAMPLE_SQL = "SELECT {aggregate} " + _HISTORY.format(
    end_user="%(end_user)s", mode="%(mode)s", occurred_at="%(occurred_at)s"
)
_COUNT = "count(*)"
_SUM = (
    "COALESCE(sum(CASE WHEN jsonb_typeof(h.{context} -> %(field)s) = 'number' "
    "THEN (h.{context} ->> %(field)s)::numeric END), 0)"
).format(**EVENT_COLUMNS)


def facts_for_events(
    *, events: list[TriggerEvent], specs: list[FactSpec]
) -> dict[uuid.UUID, dict[FactSpec, int | float]]:
    """{event id: {fact spec: value}} for every event and every (distinct) fact spec.

    Keyed by the spec, not its name: two campaigns may give one name to different facts.
    An unsaved event (a dry run's sample) is counted from the history plus itself."""
    stored = [event for event in events if not event._state.adding]
    values = _stored_facts(stored, specs) if stored else {}
    for event in events:
        if event._state.adding:
            values[event.id] = _sample_facts(event, specs)
    return values


def _stored_facts(events: list[TriggerEvent], specs: list[FactSpec]) -> dict:
    values: dict = {event.id: {} for event in events}
    computed: dict[tuple, dict] = {}
    event_ids = list(values)
    with connection.cursor() as cursor:
        for spec in specs:
            key = (spec.aggregate, spec.trigger_id, spec.field, spec.window_days)
            if key not in computed:
                cursor.execute(
                    _FACT_SQL.format(aggregate=_aggregate(spec)),
                    {
                        "trigger_id": spec.trigger_id,
                        "window": timedelta(days=spec.window_days),
                        "event_ids": event_ids,
                        "field": spec.field,
                    },
                )
                computed[key] = dict(cursor.fetchall())
            for event_id, value in computed[key].items():
                values[event_id][spec] = _number(value)
    return values


def _sample_facts(event: TriggerEvent, specs: list[FactSpec]) -> dict[FactSpec, int | float]:
    values = {}
    with connection.cursor() as cursor:
        for spec in specs:
            history = 0
            if event.end_user_id is not None:  # a user we have never seen has no history
                cursor.execute(
                    _SAMPLE_SQL.format(aggregate=_aggregate(spec)),
                    {
                        "trigger_id": spec.trigger_id,
                        "window": timedelta(days=spec.window_days),
                        "end_user": event.end_user_id,
                        "mode": event.mode,
                        "occurred_at": event.occurred_at,
                        "field": spec.field,
                    },
                )
                history = _number(cursor.fetchone()[0])
            total = history + _itself(event, spec)
            values[spec] = float(total) if spec.aggregate == "sum" else total  # a sum is a double
    return values


def _itself(event: TriggerEvent, spec: FactSpec) -> int | float:
    """What the sample adds to its own fact (the SQL's rules: a JSON number, not a bool)."""
    if spec.trigger_id != event.trigger_id:
        return 0
    if spec.aggregate == "count":
        return 1
    value = event.context.get(spec.field)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _aggregate(spec: FactSpec) -> str:
    return _COUNT if spec.aggregate == "count" else _SUM


def _number(value) -> int | float:
    return float(value) if isinstance(value, Decimal) else int(value)
