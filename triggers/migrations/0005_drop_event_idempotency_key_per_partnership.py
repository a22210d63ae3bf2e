"""Idempotency keys of events become unique per (partnership, mode, key), step 2 of 2.

Drops the per-partnership constraint, so a live request may reuse a key a test request used.
Run it once the code whose ingest statement says ``ON CONFLICT (partnership_id, mode,
idempotency_key)`` is deployed: the older code's statement needs this constraint as its arbiter.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("triggers", "0004_event_idempotency_key_per_mode"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="triggerevent",
            name="uniq_event_idempotency_key",
        ),
    ]
