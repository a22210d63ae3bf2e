"""Ingest with idempotency keys in every schema a rolling deploy passes through: before triggers
0004 (keys unique per partnership), between 0004 and 0006 (both constraints) and after 0006
(unique per partnership and mode). Real PostgreSQL, committed data."""

import orjson
import psycopg
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from config.errors import ErrorCode
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE_0004 = [("triggers", "0003_drop_redundant_fk_indexes")]
BETWEEN = [("triggers", "0005_triggerevent_attempts_and_claims")]


def migrate(targets) -> None:
    MigrationExecutor(connection).migrate(targets)


@pytest.fixture(params=["before_0004", "between", "after_0006"])
def schema(request):
    """The triggers schema at one step of the upgrade; back to the latest afterwards."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    targets = {"before_0004": BEFORE_0004, "between": BETWEEN, "after_0006": latest}
    try:
        migrate(targets[request.param])
        if request.param != "after_0006":
            _later_trigger_columns(
                "ADD COLUMN client_sendable boolean NOT NULL DEFAULT false, "
                "ADD COLUMN revision integer NOT NULL DEFAULT 1"
            )
        yield request.param
    finally:
        if request.param != "after_0006":
            _later_trigger_columns(
                "DROP COLUMN IF EXISTS client_sendable, DROP COLUMN IF EXISTS revision"
            )
        migrate(latest)


def _later_trigger_columns(change: str) -> None:
    """Today's code reads the triggers' columns added after the events' steps tested here
    (client_sendable and revision, both triggers 0009), which a deploy adds before the code
    runs: only the events' constraints are of the older schemas."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE triggers_trigger {change}")


@pytest.fixture
def send(clients, trigger):
    def send(mode: str, key: str, amount: float = 30):
        body = {
            "trigger_name": trigger.name,
            "external_user_id": "ada",
            "transaction_context": {"amount": amount, "currency": "EUR"},
        }
        return clients[mode].post(
            f"/partnerships/{trigger.partnership_id}/triggers",
            orjson.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    return send


@pytest.fixture
def clients(partner_client, test_client) -> dict:
    return {"live": partner_client, "test": test_client}


def test_a_key_is_stored_replayed_and_refused_with_another_body_in_every_schema(schema, send):
    first = send("live", "order-1")
    replay = send("live", "order-1")
    other_body = send("live", "order-1", amount=31)

    assert first.status_code == 200, first.content
    assert replay.status_code == 200, replay.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["data"]["trigger_event_id"] == first.json()["data"]["trigger_event_id"]
    assert other_body.status_code == 409
    assert other_body.json()["code"] == ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert TriggerEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("schema", "other_mode_status"),
    [("before_0004", 409), ("between", 409), ("after_0006", 200)],
    indirect=["schema"],
)
def test_a_live_key_reused_in_test_mode_is_a_409_while_the_old_constraint_exists(
    schema, send, other_mode_status
):
    assert send("live", "order-1").status_code == 200

    response = send("test", "order-1")

    assert response.status_code == other_mode_status, response.content
    if other_mode_status == 409:
        assert response.json()["code"] == ErrorCode.IDEMPOTENCY_KEY_REUSED
        assert TriggerEvent.objects.count() == 1
    else:
        assert set(TriggerEvent.objects.values_list("mode", flat=True)) == {"live", "test"}


def test_a_new_event_of_a_known_user_is_one_statement_in_every_schema(schema, send):
    assert send("live", "order-1").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        response = send("live", "order-2")

    assert response.status_code == 200, response.content
    assert [query["sql"].split()[0] for query in queries] == ["INSERT"]


def other_session() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def test_a_key_whose_event_is_purged_after_the_conflict_is_stored_anew(send):
    purged = send("live", "order-1").json()["data"]["trigger_event_id"]
    looked_up = []

    def purge_before_the_lookup(execute, sql, params, many, context):
        if "SELECT id, request_hash" in sql and not looked_up:
            looked_up.append(sql)
            with other_session() as session:  # retention deletes the event meanwhile
                session.execute("DELETE FROM triggers_triggerevent WHERE id = %s", [purged])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(purge_before_the_lookup):
        response = send("live", "order-1")

    assert looked_up
    assert response.status_code == 200, response.content
    assert "Idempotent-Replayed" not in response.headers
    (stored,) = TriggerEvent.objects.all()
    assert str(stored.id) == response.json()["data"]["trigger_event_id"] != purged
