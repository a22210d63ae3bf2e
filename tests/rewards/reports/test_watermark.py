"""Events received are counted behind a watermark that never passes an insert still running."""

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from rewards.reports.maintain import reports_count_received
from rewards.reports.selectors import report_scope, report_totals
from tests.factories import EndUserFactory, TriggerFactory

pytestmark = pytest.mark.django_db(transaction=True)

_INSERT = """
INSERT INTO triggers_triggerevent (id, partnership_id, trigger_id, end_user_id, context, mode,
       tags, occurred_at, received_at, deliver_at, status, attempts, error, decisions,
       request_hash)
VALUES (gen_random_uuid(), %s, %s, %s, '{}', 'live', '{}', %s, %s, %s, 'queued', 0, '', '[]', '')
"""


def test_an_insert_that_commits_late_is_still_counted(settings):
    trigger = TriggerFactory()
    user = EndUserFactory(partnership=trigger.partnership)
    settle = timedelta(seconds=settings.REPORTS_RECEIVED_SETTLE_SECONDS)
    stamped = timezone.now()
    dsn = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"}) as slow:
        slow.execute(
            _INSERT,
            [trigger.partnership_id, trigger.id, user.id, stamped, stamped, stamped],
        )
        # Three settle times later the insert has still not committed (a stalled disk): the
        # watermark stops before its transaction began, less the margin.
        through = reports_count_received(now=stamped + settle * 3)
        assert through < stamped
        slow.commit()

    assert reports_count_received(now=stamped + settle * 4) == stamped + settle * 3

    day = stamped.astimezone(trigger.partnership.zone).date()
    scope = report_scope(partnership=trigger.partnership, mode="live", first_day=day, last_day=day)
    assert report_totals(scope=scope).activity.events_received == 1
