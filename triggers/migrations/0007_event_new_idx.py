"""The claim's index holds new events only (attempts = 0): events waiting for a retry have
their own index (event_retry_idx), and a backlog of them no longer sits in front of every
claim. Built and dropped CONCURRENTLY: events keep arriving."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("triggers", "0006_drop_event_idempotency_key_per_partnership"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="triggerevent",
            index=models.Index(
                condition=models.Q(("attempts", 0), ("status", "queued")),
                fields=["deliver_at"],
                name="event_new_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="triggerevent", name="event_queued_idx"),
    ]
