"""Retention beside ingest and the workers, on separate connections (committed rows)."""

import threading
import time
from datetime import timedelta

import orjson
import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from config.beat import _conninfo
from rewards.models import Reversal
from rewards.services.retention import retention_run
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory
from tests.support import process_queued
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OLD = 20_000
_OLD_EVENTS = """
INSERT INTO triggers_triggerevent (
    id, partnership_id, trigger_id, end_user_id, context, idempotency_key, request_hash, mode,
    tags, occurred_at, received_at, deliver_at, status, attempts, error, decisions
)
SELECT gen_random_uuid(), %(partnership)s, %(trigger)s, %(user)s, '{}', 'old-' || i, '', 'live',
       '{}', %(at)s, %(at)s + i * interval '1 ms', %(at)s, 'processed', 0, '', '[]'
  FROM generate_series(1, %(count)s) i
"""


@pytest.fixture
def retention(settings):
    settings.EVENT_RETRY_DELAY_SECONDS = 0
    return settings


def test_an_event_another_session_holds_is_skipped_not_waited_for(trigger, retention):
    held, free = TriggerEventFactory.create_batch(2, trigger=trigger, status="processed")
    long_ago = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS + 1)
    TriggerEvent.objects.update(received_at=long_ago, occurred_at=long_ago, processed_at=long_ago)

    with psycopg.connect(_conninfo()) as other:  # as a worker, a reversal or an erasure would
        other.execute("SELECT 1 FROM triggers_triggerevent WHERE id = %s FOR UPDATE", [held.pk])
        started = time.monotonic()
        report = retention_run()
        took = time.monotonic() - started

    assert report.events_skipped_locked == 1
    assert took < 1
    assert TriggerEvent.objects.filter(pk=held.pk).exists()
    assert not TriggerEvent.objects.filter(pk=free.pk).exists()
    assert retention_run().events_retired == 1  # released: the next run takes it


def test_retirement_beside_ingest_and_workers_blocks_neither_and_all_are_right(
    trigger, api_key, partnership, retention
):
    CampaignFactory(trigger=trigger)
    user = EndUserFactory(partnership=partnership)
    with connection.cursor() as cursor:
        cursor.execute(
            _OLD_EVENTS,
            {
                "partnership": partnership.id,
                "trigger": trigger.id,
                "user": user.id,
                "count": OLD,
                "at": timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS + 1),
            },
        )
    answers: list[tuple[str, int, dict, float]] = []
    answered: list[float] = []
    reports = []
    spans: list[float] = []  # when the retirement started and ended
    ingest_done = threading.Event()
    errors = []

    def retire():
        try:
            spans.append(time.monotonic())
            reports.append(retention_run(batch_size=500))
            spans.append(time.monotonic())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    def ingest():
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=api_key.plaintext)
        try:
            # Fresh keys, and keys of old events that may or may not be retired yet.
            for key in [f"new-{i}" for i in range(150)] + [f"old-{i}" for i in range(1, 151)]:
                body = {
                    "trigger_name": trigger.name,
                    "external_user_id": f"u-{key}",
                    "transaction_context": {"amount": 10, "currency": "USD"},
                }
                started = time.monotonic()
                response = client.post(
                    f"/partnerships/{partnership.id}/triggers",
                    orjson.dumps(body),
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=key,
                )
                took = time.monotonic() - started
                answers.append((key, response.status_code, response.json(), took))
                answered.append(time.monotonic())
        except Exception as error:
            errors.append(error)
        finally:
            ingest_done.set()
            connections.close_all()

    def work():
        try:
            while not ingest_done.is_set():
                process_queued()
            process_queued()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=f) for f in (retire, ingest, work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, errors
    (report,) = reports
    assert report.complete
    assert report.largest_batch <= 500
    # They overlapped: requests were answered while the retirement ran.
    assert sum(spans[0] < at < spans[1] for at in answered) > 10
    # Every request got an answer at once, a stored event or (an old key not yet retired) a 409.
    assert max(took for *_, took in answers) < 2
    stored = {a[2]["data"]["trigger_event_id"] for a in answers if a[1] == 200}
    refused = [a for a in answers if a[1] != 200]
    assert all(a[1] == 409 and a[0].startswith("old-") for a in refused), refused[:3]
    assert len(stored) + len(refused) == 300
    # Nothing old is left but what a key reuse's new event replaced; every new one evaluated.
    assert not TriggerEvent.objects.filter(idempotency_key__startswith="old-", request_hash="")
    assert report.events_retired == OLD
    new = TriggerEvent.objects.filter(pk__in=stored)
    assert new.count() == len(stored)
    assert set(new.values_list("status", flat=True)) == {"processed"}
    assert new.filter(rewards__isnull=False).count() == len(stored)


def test_a_row_the_deletes_would_wait_for_costs_its_page_two_seconds_not_the_run(
    trigger, partnership, retention
):
    """Nothing locks a reversal row today; should anything hold one, the batch gives up after
    its lock_timeout and the run goes on."""
    held, free = TriggerEventFactory.create_batch(2, trigger=trigger, status="cancelled")
    reversal = Reversal.objects.create(partnership=partnership, trigger_event=held, mode="live")
    long_ago = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS + 1)
    TriggerEvent.objects.filter(pk=held.pk).update(received_at=long_ago, occurred_at=long_ago)
    TriggerEvent.objects.filter(pk=free.pk).update(
        received_at=long_ago + timedelta(seconds=1), occurred_at=long_ago
    )

    with psycopg.connect(_conninfo()) as other:
        other.execute("SELECT 1 FROM rewards_reversal WHERE id = %s FOR UPDATE", [reversal.pk])
        started = time.monotonic()
        report = retention_run(batch_size=1)
        took = time.monotonic() - started

    assert 2 <= took < 5
    assert (report.complete, report.events_skipped_locked, report.events_retired) == (True, 1, 1)
    assert TriggerEvent.objects.filter(pk=held.pk).exists()
    assert not TriggerEvent.objects.filter(pk=free.pk).exists()
    assert retention_run().reversals_retired == 1
    assert not TriggerEvent.objects.filter(pk=held.pk).exists()
