"""Idempotency keys of events become unique per (partnership, mode, key), step 2 of 2.

Drops the per-partnership constraint, so a live request may reuse a key a test request used.
Run it only once no process runs older code: its ingest statement's ``ON CONFLICT
(partnership_id, idempotency_key)`` needs this constraint as its arbiter.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("triggers", "0005_triggerevent_attempts_and_claims"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="triggerevent",
            name="uniq_event_idempotency_key",
        ),
    ]
