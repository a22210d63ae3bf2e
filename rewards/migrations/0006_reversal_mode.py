"""Reversals get the mode of their event; their idempotency keys become unique per
(partnership, mode, key), as events' are (triggers 0004, 0006).

The backfill is plain SQL (a migration must not import application code, which changes).
The reversals table is small next to the events table: its constraint is swapped in place.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0005_webhook_previous_secret"),
    ]

    operations = [
        migrations.AddField(
            model_name="reversal",
            name="mode",
            field=models.CharField(choices=[("live", "Live"), ("test", "Test")], max_length=8, null=True),
        ),
        migrations.RunSQL(
            """
            UPDATE rewards_reversal r
               SET mode = e.mode
              FROM triggers_triggerevent e
             WHERE e.id = r.trigger_event_id AND r.mode IS NULL
            """,
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="reversal",
            name="mode",
            field=models.CharField(choices=[("live", "Live"), ("test", "Test")], max_length=8),
        ),
        migrations.RemoveConstraint(
            model_name="reversal",
            name="uniq_reversal_idempotency_key",
        ),
        migrations.AddConstraint(
            model_name="reversal",
            constraint=models.UniqueConstraint(
                fields=("partnership", "mode", "idempotency_key"),
                name="uniq_reversal_mode_idempotency_key",
            ),
        ),
    ]
