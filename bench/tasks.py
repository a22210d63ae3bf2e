from celery import shared_task
from django.db import transaction
from django.utils import timezone


@shared_task(ignore_result=True)
def noop(event_id: str) -> None:
    """The evaluation bench's measure of Celery's own cost per task."""


@shared_task(ignore_result=True, acks_late=False)
def noop_early_ack(event_id: str) -> None:
    """The no-op with Celery's default acknowledgement (before running), for the bench's
    "Celery defaults" baseline."""


@shared_task(ignore_result=True)
def naive_evaluate(event_id: str) -> None:
    """The naive design's worker (bench/views.py publishes one per event): the event locked and
    evaluated alone, in a transaction of its own, by our own processor (rewards, counters,
    webhook rows), its outcome written with the ORM. What differs from ours is the design: a
    broker message, a task and a transaction per event instead of claimed batches."""
    from rewards.tasks import EVALUATION
    from triggers.models import TriggerEvent

    with transaction.atomic():
        event = (
            TriggerEvent.objects.select_for_update()
            .filter(pk=event_id, status=TriggerEvent.Status.QUEUED)
            .first()
        )
        if event is None:  # already evaluated (a redelivery), or the bench emptied the table
            return
        (outcome,) = EVALUATION["processor"]([event])
        event.status, event.error = outcome.status, outcome.error
        event.decisions = outcome.decisions  # as the workers store them (compact or a list)
        event.processed_at = event.last_attempt_at = timezone.now()
        event.attempts += 1
        event.save(
            update_fields=[
                "status",
                "error",
                "decisions",
                "processed_at",
                "last_attempt_at",
                "attempts",
            ]
        )
