"""Deliveries say their mode, so that the sender can check, when it sends one, that its endpoint
still receives that mode. Existing deliveries take it from their payload: ``data.mode`` has
said it since modes exist; a payload without it is from before them, when all was live.

The backfill is plain SQL (a migration must not import application code, which changes). Old
code's delivery inserts lack the column: see README.md, "Upgrading while serving".
"""

from django.db import migrations, models

MODES = [("live", "Live"), ("test", "Test")]


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0007_webhookendpoint_modes"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="mode",
            field=models.CharField(choices=MODES, max_length=8, null=True),
        ),
        migrations.RunSQL(
            """
            UPDATE rewards_webhookdelivery
               SET mode = COALESCE(payload -> 'data' ->> 'mode', 'live')
             WHERE mode IS NULL
            """,
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="mode",
            field=models.CharField(choices=MODES, max_length=8),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed (gave up)"),
                    ("cancelled", "Cancelled (no longer subscribed)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
    ]
