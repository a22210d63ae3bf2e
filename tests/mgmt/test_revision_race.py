"""Two writers holding the same revision, at once: one wins, the other is 412, nothing lost."""

import threading

import pytest
from django.db import connection, transaction

from config.errors import ApplicationError, ErrorCode
from triggers.models import Trigger
from triggers.services.configuration import trigger_save


@pytest.mark.django_db(transaction=True)
def test_the_second_of_two_concurrent_writes_of_one_revision_is_refused(trigger):
    loaded = trigger.revision
    first_holds_the_row = threading.Event()
    second_started = threading.Event()
    outcomes: dict[str, object] = {}

    def write(name: str, hold: bool) -> None:
        try:
            edited = Trigger.objects.get(pk=trigger.pk)
            edited.description = name
            with transaction.atomic():
                trigger_save(trigger=edited, actor=None, expected_revision=loaded)
                if hold:  # commit only once the other writer is waiting on the row
                    first_holds_the_row.set()
                    second_started.wait(5)
            outcomes[name] = "saved"
        except ApplicationError as exc:
            outcomes[name] = exc.code
        finally:
            connection.close()

    first = threading.Thread(target=write, args=("first", True))
    first.start()
    assert first_holds_the_row.wait(5)
    second = threading.Thread(target=write, args=("second", False))
    second.start()
    second.join(0.5)  # blocked on the first's row lock
    assert second.is_alive()
    second_started.set()
    first.join()
    second.join()

    assert outcomes == {"first": "saved", "second": ErrorCode.VERSION_CONFLICT}
    trigger.refresh_from_db()
    assert (trigger.description, trigger.revision) == ("first", loaded + 1)
