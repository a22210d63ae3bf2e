"""Report aggregates (rewards.reports), filled from the rows already there.

The backfill is plain SQL that mirrors ``rewards.reports.maintain`` (a migration must not import
application code, which changes): rewards at issued_at, adjustments at created_at, events'
outcomes and decisions at processed_at, all in 15-minute UTC buckets. Events received are
counted by the beat job from its watermark (none yet: it starts from the oldest event).
Workers of the old code write no aggregates: stop them before this migration (README.md,
"Upgrading while serving").
"""

import django.db.models.deletion
from django.db import migrations, models

BUCKET = "date_bin('15 minutes', {}, timestamptz '2000-01-01 00:00:00+00')"

BACKFILL_MONEY = f"""
INSERT INTO rewards_moneybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, unit, kind, count, amount)
SELECT r.partnership_id, r.mode, {BUCKET.format("r.issued_at")}, e.trigger_id, r.campaign_id,
       r.unit, 'issued', count(*), sum(r.amount)
  FROM rewards_reward r JOIN triggers_triggerevent e ON e.id = r.trigger_event_id
 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rewards_moneybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, unit, kind, count, amount)
SELECT r.partnership_id, r.mode, {BUCKET.format("a.created_at")}, e.trigger_id, r.campaign_id,
       r.unit, 'reversed', count(*), sum(a.amount)
  FROM rewards_rewardadjustment a
  JOIN rewards_reward r ON r.id = a.reward_id
  JOIN triggers_triggerevent e ON e.id = r.trigger_event_id
 GROUP BY 1, 2, 3, 4, 5, 6;
"""

# A stored decision is [campaign_id, outcome, ...] or, before that form, an object.
DECISION_CAMPAIGN = "CASE jsonb_typeof(d) WHEN 'array' THEN d ->> 0 ELSE d ->> 'campaign_id' END"
DECISION_OUTCOME = "CASE jsonb_typeof(d) WHEN 'array' THEN d ->> 1 ELSE d ->> 'outcome' END"
BACKFILL_ACTIVITY = f"""
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT partnership_id, mode, {BUCKET.format("processed_at")}, trigger_id, NULL,
       CASE status WHEN 'processed' THEN 'event.evaluated' ELSE 'event.failed' END, count(*)
  FROM triggers_triggerevent
 WHERE status IN ('processed', 'failed') AND processed_at IS NOT NULL
 GROUP BY 1, 2, 3, 4, 6;
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT e.partnership_id, e.mode, {BUCKET.format("e.processed_at")}, e.trigger_id, NULL,
       'event.rewarded', count(*)
  FROM triggers_triggerevent e
 WHERE e.status = 'processed' AND e.processed_at IS NOT NULL
   AND EXISTS (SELECT FROM jsonb_array_elements(e.decisions) d
                WHERE {DECISION_OUTCOME} = 'rewarded')
 GROUP BY 1, 2, 3, 4;
INSERT INTO rewards_activitybucket
       (partnership_id, mode, bucket, trigger_id, campaign_id, metric, count)
SELECT e.partnership_id, e.mode, {BUCKET.format("e.processed_at")}, e.trigger_id,
       ({DECISION_CAMPAIGN})::uuid, 'decision.' || ({DECISION_OUTCOME}), count(*)
  FROM triggers_triggerevent e CROSS JOIN LATERAL jsonb_array_elements(e.decisions) d
 WHERE e.status = 'processed' AND e.processed_at IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5, 6;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("partnerships", "0003_partnership_max_event_lateness_days"),
        ("rewards", "0008_webhookdelivery_mode"),
        # Not 0006: the rolling upgrade applies triggers 0006 last (README).
        ("triggers", "0005_triggerevent_attempts_and_claims"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportWatermark",
            fields=[
                ("name", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("through", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="MoneyBucket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("mode", models.CharField(max_length=8)),
                ("bucket", models.DateTimeField(help_text="Start of the 15-minute UTC bucket.")),
                ("trigger_id", models.BigIntegerField()),
                ("campaign_id", models.UUIDField()),
                ("unit", models.CharField(max_length=40)),
                ("kind", models.CharField(choices=[("issued", "Issued"), ("reversed", "Reversed (clawed back)")], max_length=16)),
                ("count", models.BigIntegerField(default=0)),
                ("amount", models.DecimalField(decimal_places=6, default=0, max_digits=24)),
                ("partnership", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="partnerships.partnership")),
            ],
            options={
                "permissions": [("view_reports", "Can view reward reports and exports")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("partnership", "mode", "bucket", "trigger_id", "campaign_id", "unit", "kind"),
                        name="uniq_money_bucket",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ActivityBucket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("mode", models.CharField(max_length=8)),
                ("bucket", models.DateTimeField(help_text="Start of the 15-minute UTC bucket.")),
                ("trigger_id", models.BigIntegerField()),
                ("campaign_id", models.UUIDField(blank=True, null=True)),
                ("metric", models.CharField(max_length=48)),
                ("count", models.BigIntegerField(default=0)),
                ("partnership", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="partnerships.partnership")),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("partnership", "mode", "bucket", "trigger_id", "campaign_id", "metric"),
                        name="uniq_activity_bucket",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
        migrations.RunSQL(BACKFILL_MONEY, migrations.RunSQL.noop),
        migrations.RunSQL(BACKFILL_ACTIVITY, migrations.RunSQL.noop),
    ]
