"""Rebuilding the aggregates from the rows: after an upgrade that old processes overlapped, or
to seed a benchmark. The same rules as ``maintain`` (a test holds the two to each other), in
set-based SQL. Migration 0009 keeps its own frozen copy for the first fill.

Events received, occurred or evaluated before the retention horizon may have been retired
(``services/retention.py``): their activity buckets (before the first bucket boundary after
``now - EVENT_RETENTION_DAYS``) are kept as counted, never recounted from what is left. Money
is recounted in full: rewards, and their events, are never retired."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import CandidateList

from .maintain import BUCKET_SQL, RECEIVED
from .models import ActivityBucket, ClosedDay, DayFigure, MoneyBucket, ReportWatermark

_MONEY = """
INSERT INTO rewards_moneybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, unit, kind, count, amount)
SELECT r.partnership_id, r.mode, {issued}, e.trigger_id, r.campaign_id, r.unit, 'issued',
       count(*), sum(r.amount)
  FROM rewards_reward r JOIN triggers_triggerevent e ON e.id = r.trigger_event_id
 WHERE r.partnership_id = ANY(%(partnerships)s)
 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rewards_moneybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, unit, kind, count, amount)
SELECT r.partnership_id, r.mode, {adjusted}, e.trigger_id, r.campaign_id, r.unit, 'reversed',
       count(*), sum(a.amount)
  FROM rewards_rewardadjustment a
  JOIN rewards_reward r ON r.id = a.reward_id
  JOIN triggers_triggerevent e ON e.id = r.trigger_event_id
 WHERE r.partnership_id = ANY(%(partnerships)s)
 GROUP BY 1, 2, 3, 4, 5, 6;
""".format(
    issued=BUCKET_SQL.format(column="r.issued_at"),
    adjusted=BUCKET_SQL.format(column="a.created_at"),
)

_OUTCOME = "CASE jsonb_typeof(d) WHEN 'array' THEN d ->> 1 ELSE d ->> 'outcome' END"
_CAMPAIGN = "CASE jsonb_typeof(d) WHEN 'array' THEN d ->> 0 ELSE d ->> 'campaign_id' END"
_ARRAY = "CASE jsonb_typeof(e.decisions) WHEN 'array' THEN e.decisions ELSE '[]' END"
_LISTED = (
    "CASE jsonb_typeof(e.decisions) WHEN 'object' THEN e.decisions -> 'decisions' ELSE '[]' END"
)
_OF_EVENT = "jsonb_typeof(e.decisions) = 'object' AND l.id = (e.decisions ->> 'candidates')::bigint"
# An event's decisions as rows (campaign, outcome), from either stored form: the arrays, or
# the compact form's listed decisions and its list's other campaigns (condition_false).
_DECISIONS = f"""(
  SELECT {_CAMPAIGN} AS campaign, {_OUTCOME} AS outcome FROM jsonb_array_elements({_ARRAY}) d
  UNION ALL
  SELECT (l.campaign_ids[(x ->> 0)::int + 1])::text, x ->> 1
    FROM jsonb_array_elements({_LISTED}) x, {CandidateList._meta.db_table} l
   WHERE {_OF_EVENT}
  UNION ALL
  SELECT c.id::text, 'condition_false'
    FROM {CandidateList._meta.db_table} l,
         unnest(l.campaign_ids) WITH ORDINALITY c(id, position)
   WHERE {_OF_EVENT}
     AND NOT EXISTS (SELECT FROM jsonb_array_elements({_LISTED}) x
                      WHERE (x ->> 0)::int = c.position - 1)
) dd"""  # noqa: S608 (built from constants)
_ACTIVITY = f"""
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT partnership_id, mode, {BUCKET_SQL.format(column="processed_at")}, trigger_id, NULL,
       CASE status WHEN 'processed' THEN 'event.evaluated' ELSE 'event.failed' END, count(*)
  FROM triggers_triggerevent
 WHERE status IN ('processed', 'failed') AND processed_at >= %(since)s
   AND partnership_id = ANY(%(partnerships)s)
 GROUP BY 1, 2, 3, 4, 6;
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT e.partnership_id, e.mode, {BUCKET_SQL.format(column="e.processed_at")}, e.trigger_id,
       NULL, 'event.rewarded', count(*)
  FROM triggers_triggerevent e
 WHERE e.status = 'processed' AND e.processed_at >= %(since)s
   AND e.partnership_id = ANY(%(partnerships)s)
   AND (EXISTS (SELECT FROM jsonb_array_elements({_ARRAY}) d WHERE {_OUTCOME} = 'rewarded')
        OR EXISTS (SELECT FROM jsonb_array_elements({_LISTED}) x WHERE x ->> 1 = 'rewarded'))
 GROUP BY 1, 2, 3, 4;
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT e.partnership_id, e.mode, {BUCKET_SQL.format(column="e.processed_at")}, e.trigger_id,
       dd.campaign::uuid, 'decision.' || dd.outcome, count(*)
  FROM triggers_triggerevent e CROSS JOIN LATERAL {_DECISIONS}
 WHERE e.status = 'processed' AND e.processed_at >= %(since)s
   AND e.partnership_id = ANY(%(partnerships)s)
 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT partnership_id, mode, {BUCKET_SQL.format(column="received_at")}, trigger_id, NULL,
       'event.received', count(*)
  FROM triggers_triggerevent
 WHERE partnership_id = ANY(%(partnerships)s) AND received_at < %(through)s
   AND received_at >= %(since)s
 GROUP BY 1, 2, 3, 4;
"""  # noqa: S608 (built from constants)


def reports_rebuild(*, partnership_ids: list) -> None:
    """Replaces the aggregates of these partnerships with a count of their rows. Run it with the
    workers stopped (or accept that what they count meanwhile may be counted twice): it takes
    the watermark's lock, so the events-received job waits for it."""
    since = retention_horizon()
    with transaction.atomic():
        mark = ReportWatermark.objects.select_for_update().filter(name=RECEIVED).first()
        for model in (MoneyBucket, DayFigure, ClosedDay):
            model.objects.filter(partnership_id__in=partnership_ids).delete()
        ActivityBucket.objects.filter(
            partnership_id__in=partnership_ids, bucket__gte=since
        ).delete()
        params = {
            "partnerships": list(partnership_ids),
            "through": mark.through if mark else None,
            "since": since,
        }
        with connection.cursor() as cursor:
            for statement in (_MONEY + _ACTIVITY).split(";"):
                if statement.strip():
                    cursor.execute(statement, params)


def retention_horizon():
    """The first 15-minute bucket boundary from which every event is still stored: no event
    received, occurred or evaluated after ``now - EVENT_RETENTION_DAYS`` is ever retired."""
    horizon = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    start = horizon.replace(minute=horizon.minute - horizon.minute % 15, second=0, microsecond=0)
    return start if start == horizon else start + timedelta(minutes=15)
