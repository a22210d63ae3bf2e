"""Ingest recovering from a dead or stalled connection and from stale process state (real
PostgreSQL, committed data).

The ingest path skips Django's per-request connection health check and recovers on its own;
these tests kill the web process's real database session to prove it loses nothing and
stores nothing twice. It also remembers the user ids of external ids it has seen; a user
deleted since must not break the next event.
"""

import threading
import time

import orjson
import psycopg
import pytest
from django.db import OperationalError, connection

from partnerships.models import EndUser
from tests.factories import ApiKeyFactory, TriggerFactory
from triggers.models import TriggerEvent
from triggers.services import ingest

pytestmark = pytest.mark.django_db(transaction=True)


def body(user: str = "ada") -> bytes:
    return orjson.dumps(
        {
            "trigger_name": "transaction_completed",
            "external_user_id": user,
            "transaction_context": {"amount": 30, "currency": "EUR"},
        }
    )


@pytest.fixture
def send(api_client):
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    url = f"/partnerships/{key.partnership_id}/triggers"

    def send(user: str = "ada", **headers):
        return api_client.post(
            url,
            body(user),
            content_type="application/json",
            HTTP_X_API_KEY=key.plaintext,
            **headers,
        )

    return send


def other_session(autocommit: bool = True) -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=autocommit)


def terminate(pid: int) -> None:
    with other_session() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_connection_killed_between_requests_costs_the_client_nothing(send):
    assert send("ada").status_code == 200
    terminate(backend_pid())

    response = send("bob")

    assert response.status_code == 200, response.content
    event = TriggerEvent.objects.get(id=response.json()["data"]["trigger_event_id"])
    assert event.end_user.external_user_id == "bob"
    assert TriggerEvent.objects.count() == 2


@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": "k-lost"}])
def test_a_connection_lost_after_the_insert_committed_stores_the_event_once(send, headers):
    assert send("ada").status_code == 200
    lost = []

    def commit_then_lose_the_connection(execute, sql, params, many, context):
        result = execute(sql, params, many, context)  # autocommit: the event is stored now
        if "INSERT INTO triggers_triggerevent" in sql and not lost:
            lost.append(params["event_id"])
            terminate(backend_pid_of(context))
            raise OperationalError("server closed the connection unexpectedly")
        return result

    with connection.execute_wrapper(commit_then_lose_the_connection):
        response = send("bob", **headers)

    assert response.status_code == 200, response.content
    assert response.json()["data"]["trigger_event_id"] == str(lost[0])
    assert "Idempotent-Replayed" not in response.headers  # the client's first send
    assert TriggerEvent.objects.filter(end_user__external_user_id="bob").count() == 1
    assert TriggerEvent.objects.count() == 2


def backend_pid_of(context) -> int:
    return context["connection"].connection.info.backend_pid


def test_a_statement_stuck_past_the_timeout_is_a_503_and_stores_nothing(send):
    assert send("ada").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '300ms'")
    with other_session(autocommit=False) as blocker:
        # An uncommitted event holding the idempotency key makes our insert wait for it.
        blocker.execute(
            "INSERT INTO triggers_triggerevent (id, partnership_id, trigger_id, end_user_id,"
            " context, idempotency_key, request_hash, mode, tags, occurred_at, received_at,"
            " deliver_at, status, attempts, error, decisions)"
            " SELECT gen_random_uuid(), partnership_id, trigger_id, end_user_id, context, 'k-1',"
            " 'other', mode, tags, occurred_at, received_at, deliver_at, status, 0, '', '[]'"
            " FROM triggers_triggerevent LIMIT 1"
        )
        response = send("bob", HTTP_IDEMPOTENCY_KEY="k-1")
        blocker.rollback()

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert TriggerEvent.objects.count() == 1
    assert not TriggerEvent.objects.filter(end_user__external_user_id="bob").exists()
    connection.close()  # drop the session's statement_timeout


def test_a_known_user_takes_the_short_insert_and_stays_the_same_user(send):
    first = send("ada").json()["data"]
    assert len(ingest._user_ids) == 1

    second = send("ada").json()["data"]

    assert second["user_uuid"] == first["user_uuid"]
    assert EndUser.objects.count() == 1
    assert TriggerEvent.objects.filter(end_user_id=first["user_uuid"]).count() == 2


def test_a_user_deleted_since_it_was_remembered_is_created_anew(send):
    first = send("ada").json()["data"]
    TriggerEvent.objects.all().delete()
    EndUser.objects.filter(id=first["user_uuid"]).delete()

    response = send("ada")

    assert response.status_code == 200, response.content
    user = EndUser.objects.get(external_user_id="ada")
    assert str(user.id) == response.json()["data"]["user_uuid"] != first["user_uuid"]
    assert TriggerEvent.objects.get().end_user_id == user.id
    assert ingest._user_ids[(user.partnership_id, "ada")] == user.id


def test_the_ingest_statement_is_prepared_on_its_connection_and_nothing_else_is(send):
    for user in ("ada", "bob", "ada"):
        assert send(user).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM partnerships_enduser WHERE external_user_id = %s", ["ada"])
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]

    assert any("INSERT INTO triggers_triggerevent" in sql for sql in prepared)
    assert not any("SELECT 1 FROM partnerships_enduser" in sql for sql in prepared)


@pytest.mark.parametrize("user", ["ada", "bob"], ids=["known user", "new user"])
def test_an_event_whose_trigger_is_deleted_meanwhile_is_a_404_not_a_500(api_client, user):
    """A never-used trigger deleted (Pilot, the management API, a configuration apply) while an
    event for it is being stored: the deferred foreign key refuses the event at its commit; the
    partner gets the 404 a moment later would give, and nothing is left behind."""
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    doomed = TriggerFactory(partnership=key.partnership, name="doomed")

    def send(trigger: str, external_user_id: str):
        payload = orjson.loads(body(external_user_id)) | {"trigger_name": trigger}
        return api_client.post(
            f"/partnerships/{key.partnership_id}/triggers",
            orjson.dumps(payload),
            content_type="application/json",
            HTTP_X_API_KEY=key.plaintext,
        )

    assert send("transaction_completed", "ada").status_code == 200  # ada's id now remembered
    deleting, deleted = threading.Event(), threading.Event()

    def delete_trigger() -> None:
        with other_session(autocommit=False) as session:
            session.execute("DELETE FROM triggers_trigger WHERE id = %s", [doomed.id])
            deleting.set()
            time.sleep(0.5)  # the event's insert runs now and waits on this row at its commit
            session.commit()
        deleted.set()

    thread = threading.Thread(target=delete_trigger)
    thread.start()
    assert deleting.wait(10)
    response = send("doomed", user)
    thread.join()

    assert deleted.is_set()
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "trigger_does_not_exist"
    assert TriggerEvent.objects.count() == 1  # ada's first event only
    assert not EndUser.objects.filter(external_user_id="bob").exists()
