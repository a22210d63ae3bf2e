"""Idempotency keys of events become unique per (partnership, mode, key), step 1 of 2.

Builds the new unique index without blocking ingest (``CONCURRENTLY``, so outside a
transaction) and attaches it as the constraint the model declares. The old per-partnership
constraint stays until 0006: older code, whose ``ON CONFLICT`` names it, keeps working until
then (the current code names no conflict target and works in every state; README.md,
"Upgrading while serving").
"""

from django.db import migrations, models

INDEX = "uniq_event_mode_idempotency_key"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("triggers", "0003_drop_redundant_fk_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                # A CONCURRENTLY build that failed leaves an invalid index behind: start over.
                migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}", migrations.RunSQL.noop),
                migrations.RunSQL(
                    f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON triggers_triggerevent "
                    "(partnership_id, mode, idempotency_key)",
                    migrations.RunSQL.noop,
                ),
                # Only a catalog change (the index is already built and valid): a brief lock.
                migrations.RunSQL(
                    f"ALTER TABLE triggers_triggerevent ADD CONSTRAINT {INDEX} UNIQUE USING INDEX {INDEX}",
                    f"ALTER TABLE triggers_triggerevent DROP CONSTRAINT {INDEX}",
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="triggerevent",
                    constraint=models.UniqueConstraint(
                        fields=("partnership", "mode", "idempotency_key"), name=INDEX
                    ),
                ),
            ],
        ),
    ]
