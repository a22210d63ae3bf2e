"""The migrations that scope idempotency keys to a mode, run on data from before them."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from rewards.models import Reversal
from tests.factories import PartnershipFactory, TriggerEventFactory
from triggers.models import Trigger, TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE = [
    ("rewards", "0005_webhook_previous_secret"),
    ("triggers", "0003_drop_redundant_fk_indexes"),
]


def migrate(targets):
    """Migrates to ``targets``; the historical models there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def from_before():
    """The schema as it was before; migrated to the latest again afterwards, whatever happens."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        yield migrate(BEFORE)
    finally:
        migrate(latest)


def constraints(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", [table])
        return {name for (name,) in cursor.fetchall()}


def test_reversals_get_their_events_mode_and_keys_become_unique_per_mode(from_before):
    assert "uniq_event_idempotency_key" in constraints("triggers_triggerevent")
    assert "uniq_event_mode_idempotency_key" not in constraints("triggers_triggerevent")
    # Written with the historical models: today's have columns that later migrations add.
    partnership = PartnershipFactory()
    old_trigger = from_before.get_model("triggers", "Trigger").objects.create(
        partnership_id=partnership.id, name="transaction_completed", context_schema={}
    )
    trigger = Trigger(pk=old_trigger.pk, partnership=partnership, name=old_trigger.name)
    OldEvent = from_before.get_model("triggers", "TriggerEvent")
    events = {
        mode: OldEvent.objects.create(
            **_event_fields(TriggerEventFactory.build(trigger=trigger)), mode=mode
        )
        for mode in ("live", "test")
    }
    OldReversal = from_before.get_model("rewards", "Reversal")
    for mode, event in events.items():
        OldReversal.objects.create(
            partnership_id=trigger.partnership_id,
            trigger_event_id=event.id,
            idempotency_key=f"refund-{mode}",
        )

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert "uniq_event_idempotency_key" not in constraints("triggers_triggerevent")
    assert "uniq_reversal_mode_idempotency_key" in constraints("rewards_reversal")

    assert dict(Reversal.objects.values_list("idempotency_key", "mode")) == {
        "refund-live": "live",
        "refund-test": "test",
    }
    # A key is now free in the other mode, for reversals and events alike...
    Reversal.objects.create(
        partnership_id=trigger.partnership_id,
        trigger_event_id=events["live"].id,
        mode="live",
        idempotency_key="refund-test",
    )
    for mode in ("live", "test"):
        TriggerEventFactory(trigger=trigger, mode=mode, idempotency_key="order-1")
    # ...and still taken in its own.
    with pytest.raises(IntegrityError), transaction.atomic():
        TriggerEventFactory(trigger=trigger, mode="test", idempotency_key="order-1")
    assert TriggerEvent.objects.filter(idempotency_key="order-1").count() == 2


def _event_fields(event: TriggerEvent) -> dict:
    """An unsaved event's fields that existed before the idempotency migrations."""
    event.end_user.save()
    names = ("id", "context", "occurred_at", "received_at", "deliver_at", "status")
    return {
        **{name: getattr(event, name) for name in names},
        "partnership_id": event.partnership_id,
        "trigger_id": event.trigger_id,
        "end_user_id": event.end_user.id,
    }
