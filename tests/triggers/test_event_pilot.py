"""Pilot's events list for support: exact search on indexed columns (no LIKE scan of the
events table), filters, scoping to the operator's partnerships, and "Retry" for a failed
event."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partnerships.models import AuditEntry
from tests.factories import EndUserFactory, PartnershipFactory, TriggerEventFactory, TriggerFactory
from tests.pilot_support import page_text, pilot_operator
from tests.support import process_queued
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

EVENTS = "/pilot/triggers/triggerevent/"


@pytest.fixture
def a_and_b():
    return PartnershipFactory(name="A"), PartnershipFactory(name="B")


@pytest.fixture
def support(django_user_model, a_and_b):
    """An operator of partnership A who may view events and retry them."""
    return pilot_operator(
        django_user_model,
        "support-a",
        partnerships=[a_and_b[0]],
        perms=("triggers.view_triggerevent", "triggers.change_triggerevent"),
    )


def listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


def event_of(partnership, **fields) -> TriggerEvent:
    trigger = TriggerFactory(partnership=partnership, name=fields.pop("trigger_name", "purchase"))
    return TriggerEventFactory(trigger=trigger, **fields)


def test_search_finds_events_by_external_user_id_event_id_user_id_and_key(support, a_and_b):
    a, _ = a_and_b
    alice = EndUserFactory(partnership=a, external_user_id="alice")
    hers = event_of(a, end_user=alice)
    keyed = event_of(a, trigger_name="refund", idempotency_key="order-77")
    other = event_of(a, trigger_name="signup")

    assert listed(support.get(EVENTS, {"q": "alice"})) == {hers.pk}
    assert listed(support.get(EVENTS, {"q": str(hers.pk)})) == {hers.pk}
    assert listed(support.get(EVENTS, {"q": str(alice.pk)})) == {hers.pk}
    assert listed(support.get(EVENTS, {"q": "order-77"})) == {keyed.pk}
    assert listed(support.get(EVENTS, {"q": "ali"})) == set()  # exact, not a substring
    assert other.pk in listed(support.get(EVENTS))


def test_search_sql_compares_exactly_without_like_or_upper(support, a_and_b):
    a, _ = a_and_b
    event_of(a, end_user=EndUserFactory(partnership=a, external_user_id="alice"))

    with CaptureQueriesContext(connection) as queries:
        response = support.get(EVENTS, {"q": "alice"})

    assert response.status_code == 200
    on_events = [q["sql"] for q in queries if "triggers_triggerevent" in q["sql"]]
    assert on_events
    for sql in on_events:
        assert "LIKE" not in sql.upper()
        assert "UPPER(" not in sql.upper()
    # The user is found by the unique (partnership, external_user_id) index, exactly.
    assert any('"partnerships_enduser"."external_user_id" = ' in q["sql"] for q in queries)


def test_the_external_user_search_stays_in_the_operators_partnerships(support, a_and_b):
    a, b = a_and_b
    mine = event_of(a, end_user=EndUserFactory(partnership=a, external_user_id="same-id"))
    event_of(b, end_user=EndUserFactory(partnership=b, external_user_id="same-id"))

    assert listed(support.get(EVENTS, {"q": "same-id"})) == {mine.pk}


def test_filters_by_status_trigger_and_time_range(support, a_and_b):
    a, _ = a_and_b
    now = timezone.now()
    failed = event_of(a, status="failed", received_at=now - timedelta(days=2))
    recent = TriggerEventFactory(trigger=failed.trigger, received_at=now)
    other_trigger = event_of(a, trigger_name="signup", received_at=now)

    by_status = support.get(EVENTS, {"status__exact": "failed"})
    by_trigger = support.get(EVENTS, {"trigger__id__exact": failed.trigger_id})
    by_time = support.get(
        EVENTS,
        {"received_at__gte": (now - timedelta(days=1)).date().isoformat()},
    )

    assert listed(by_status) == {failed.pk}
    assert listed(by_trigger) == {failed.pk, recent.pk}
    assert listed(by_time) == {recent.pk, other_trigger.pk}


def test_a_bad_time_in_the_range_filter_is_refused_not_a_500(support, a_and_b):
    response = support.get(EVENTS, {"received_at__gte": "yesterday-ish"})

    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def test_the_trigger_filter_offers_only_the_operators_triggers(support, a_and_b):
    a, b = a_and_b
    TriggerFactory(partnership=a, name="a-trigger")
    TriggerFactory(partnership=a, name="a-other")
    TriggerFactory(partnership=b, name="b-trigger")

    text = page_text(support.get(EVENTS))

    assert "a-trigger" in text
    assert "b-trigger" not in text
    # The inputs of the time range and of the user, in the filter panel's form.
    assert 'name="received_at__gte"' in text and 'name="external_user_id"' in text


def test_an_operator_of_a_cannot_see_bs_events_even_by_url(support, a_and_b):
    a, b = a_and_b
    theirs = event_of(b, status="failed")
    event_of(a)

    assert theirs.pk not in listed(support.get(EVENTS))
    assert support.get(f"{EVENTS}{theirs.pk}/change/").status_code == 404
    assert support.get(f"{EVENTS}{theirs.pk}/retry/").status_code == 404
    assert support.post(f"{EVENTS}{theirs.pk}/retry/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "failed"


# --- Retry ----------------------------------------------------------------------------------


def test_retry_puts_a_failed_event_back_in_the_queue_and_the_workers_evaluate_it(
    support, a_and_b, settings
):
    settings.EVENT_RETRY_DELAY_SECONDS = 0
    a, _ = a_and_b
    event = event_of(
        a,
        status="failed",
        attempts=5,
        last_attempt_at=timezone.now() - timedelta(hours=1),
        error="RuntimeError: boom",
    )

    page = page_text(support.get(f"{EVENTS}{event.pk}/change/"))
    response = support.post(f"{EVENTS}{event.pk}/retry/", follow=True)

    assert f"{EVENTS}{event.pk}/retry/" in page  # the Retry button
    assert "back in the queue" in page_text(response)
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("queued", 5)
    entry = AuditEntry.objects.get(action="event.retry")
    assert (entry.actor, entry.target_id, entry.partnership) == (support.user, str(event.pk), a)

    process_queued()

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 6)


def test_retry_is_refused_with_a_message_for_an_event_that_did_not_fail(support, a_and_b):
    a, _ = a_and_b
    event = event_of(a, status="processed")

    page = page_text(support.get(f"{EVENTS}{event.pk}/change/"))
    response = support.post(f"{EVENTS}{event.pk}/retry/")

    assert f"{EVENTS}{event.pk}/retry/" not in page
    assert response.status_code == 409
    assert "The event is processed; only failed events can be retried" in page_text(response)
    event.refresh_from_db()
    assert event.status == "processed"
    assert not AuditEntry.objects.exists()


def test_retry_needs_the_change_permission(django_user_model, a_and_b):
    a, _ = a_and_b
    viewer = pilot_operator(django_user_model, "viewer-a", partnerships=[a])
    event = event_of(a, status="failed", attempts=5)

    page = page_text(viewer.get(f"{EVENTS}{event.pk}/change/"))
    response = viewer.post(f"{EVENTS}{event.pk}/retry/")

    assert f"{EVENTS}{event.pk}/retry/" not in page
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == "failed"


def scans_without_a_condition(plan: str) -> list[str]:
    """The plan's reads of the events table that are not an index lookup: a sequential scan,
    or an index scan with no Index Cond (the whole index read, the predicate as a Filter)."""
    lines = plan.splitlines()
    return [
        line
        for index, line in enumerate(lines)
        if "Seq Scan on triggers_triggerevent" in line
        or (
            re.search(r"Index (Only )?Scan .* on triggers_triggerevent", line)
            and "Index Cond" not in (lines[index + 1] if index + 1 < len(lines) else "")
        )
    ]


def test_every_search_arm_is_served_by_an_index(a_and_b):
    """With sequential scans priced out, a predicate no index serves still reads the whole
    table (or a whole index)."""
    from triggers.selectors import trigger_event_search

    a, b = a_and_b
    alice = EndUserFactory(partnership=a, external_user_id="alice")
    event = event_of(a, end_user=alice, idempotency_key="k-1")
    for term in ("alice", "k-1", str(event.pk)):
        found = trigger_event_search(
            events=TriggerEvent.objects.all(), term=term, partnership_ids=[a.pk, b.pk]
        )
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = found.explain()

        assert scans_without_a_condition(plan) == [], (term, plan)
        assert list(found) == [event]


def test_the_retry_page_of_an_event_that_did_not_fail_says_so_not_a_500(support, a_and_b):
    event = event_of(a_and_b[0], status="processed")

    response = support.get(f"{EVENTS}{event.pk}/retry/")

    assert response.status_code == 200
    assert "The event is processed; only failed events can be retried" in page_text(response)
