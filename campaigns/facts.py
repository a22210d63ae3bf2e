"""Per-user facts (counts and sums over a user's recent events), one query per fact per batch.

A fact is computed as of the evaluated event's ``occurred_at``: its window is
``(occurred_at - window_days, occurred_at]`` over the same user's events of the fact's trigger
in the same mode, whatever order they arrived in, the evaluated event included. Cancelled and
failed events do not count.
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

# Formatted from the constants above only; values are parameters.
_FACT_SQL = """
SELECT e.{id}, (
    SELECT {{aggregate}}
      FROM {table} h
     WHERE h.{end_user} = e.{end_user}
       AND h.{trigger} = %(trigger_id)s
       AND h.{mode} = e.{mode}
       AND h.{occurred_at} > e.{occurred_at} - %(window)s
       AND h.{occurred_at} <= e.{occurred_at}
       AND h.{status} NOT IN ({not_counted})
)
FROM {table} e
WHERE e.{id} = ANY(%(event_ids)s)
""".format(  # noqa: S608
    table=EVENT_TABLE,
    not_counted=", ".join(f"'{status.value}'" for status in NOT_COUNTED),
    **EVENT_COLUMNS,
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

    Keyed by the spec, not its name: two campaigns may give one name to different facts."""
    values: dict = {event.id: {} for event in events}
    computed: dict[tuple, dict] = {}
    event_ids = list(values)
    with connection.cursor() as cursor:
        for spec in specs:
            key = (spec.aggregate, spec.trigger_id, spec.field, spec.window_days)
            if key not in computed:
                cursor.execute(
                    _FACT_SQL.format(aggregate=_COUNT if spec.aggregate == "count" else _SUM),
                    {
                        "trigger_id": spec.trigger_id,
                        "window": timedelta(days=spec.window_days),
                        "event_ids": event_ids,
                        "field": spec.field,
                    },
                )
                computed[key] = dict(cursor.fetchall())
            for event_id, value in computed[key].items():
                values[event_id][spec] = float(value) if isinstance(value, Decimal) else int(value)
    return values
