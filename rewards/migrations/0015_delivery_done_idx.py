"""Webhook deliveries that are done, by created_at: retention retires the old ones oldest first
without reading the table (rewards.webhooks.services.webhook_deliveries_retire). Built
CONCURRENTLY: deliveries keep being written."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("rewards", "0014_management_api"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status", "pending"), _negated=True),
                fields=["created_at"],
                name="delivery_done_idx",
            ),
        ),
    ]
