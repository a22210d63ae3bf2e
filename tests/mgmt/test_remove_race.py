"""A reference written while its trigger or webhook endpoint is being deleted: the delete sees
it (and archives or deactivates instead), never fails at commit (a 500); and two concurrent
creates of one name: the second gets the duplicate's own 422, not an IntegrityError."""

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_remove
from tests.campaigns.test_approval_pilot import draft
from tests.factories import EndUserFactory, TriggerEventFactory
from triggers.models import Trigger
from triggers.services.configuration import trigger_remove, trigger_save

pytestmark = pytest.mark.django_db(transaction=True)


def _held_then(first: Callable[[], object], second: Callable[[], object]) -> object:
    """``first`` in a transaction held open until ``second`` (its own transaction, as a
    request's) has started and waits on it; then both end. ``second``'s outcome: what it
    returned, or the exception it ended with (what its request would have answered: 500)."""
    first_done, second_waits = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def hold() -> None:
        try:
            with transaction.atomic():
                first()
                first_done.set()
                second_waits.wait(5)
        finally:
            connection.close()

    def then() -> None:
        try:
            with transaction.atomic():
                outcome["second"] = second()
        except Exception as exc:  # the answer under test
            outcome["second"] = exc
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_done.wait(5)
    follower = threading.Thread(target=then)
    follower.start()
    follower.join(0.5)  # waiting on the first's lock (or, unfixed, already past its checks)
    second_waits.set()
    holder.join()
    follower.join()
    return outcome["second"]


def _race(reference: Callable[[], None], remove: Callable[[], object]) -> object:
    """``reference`` inserts a row referencing the target and takes its foreign-key lock now
    (as its commit would), holding it while ``remove`` starts."""

    def referenced() -> None:
        reference()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the commit's check, now

    return _held_then(referenced, remove)


def test_an_event_written_during_a_triggers_delete_archives_it(trigger):
    user = EndUserFactory(partnership=trigger.partnership)

    removed = _race(
        lambda: TriggerEventFactory(trigger=trigger, end_user=user),
        lambda: trigger_remove(trigger=trigger, actor=None, expected_revision=None),
    )

    assert removed is False  # archived: the event keeps it
    assert Trigger.objects.get(pk=trigger.pk).status == Trigger.Status.ARCHIVED


def test_a_delivery_written_during_an_endpoints_delete_deactivates_it(partnership):
    endpoint = WebhookEndpoint.objects.create(
        partnership=partnership, url="https://partner.example/hooks", secret="whsec_x"
    )

    def deliver() -> None:
        now = timezone.now()
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_type="reward.issued",
            payload={"id": "x"},
            next_attempt_at=now,
            created_at=now,
        )

    removed = _race(
        deliver,
        lambda: webhook_endpoint_remove(endpoint=endpoint, actor=None, expected_revision=None),
    )

    assert removed is False
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is False


def test_the_second_of_two_concurrent_trigger_creates_is_the_duplicates_error(partnership):
    def create() -> Trigger:
        return trigger_save(trigger=Trigger(partnership=partnership, name="dup"), actor=None)

    second = _held_then(create, create)
    assert isinstance(second, ValidationError), second
    with pytest.raises(ValidationError) as sequential:
        trigger_save(trigger=Trigger(partnership=partnership, name="dup"), actor=None)
    assert second.message_dict == sequential.value.message_dict
    assert Trigger.objects.filter(partnership=partnership, name="dup").count() == 1


def test_the_second_of_two_concurrent_campaign_creates_is_the_duplicates_error(trigger):
    second = _held_then(lambda: draft(trigger, None), lambda: draft(trigger, None))
    assert isinstance(second, ValidationError), second
    assert second.messages == ["Campaign with this Partnership and Slug already exists."]
    assert Campaign.objects.filter(slug="new").count() == 1
