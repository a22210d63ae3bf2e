"""What a retried failed event (Pilot's "Retry", ``triggers.signals.trigger_event_retrying``)
means to rewards, in the retry's transaction with the event locked: a reversed event is never
queued again (it would pay what its partner refunded), nor is an erased user's (it would be
evaluated without its context), and the reports take its failure back.
"""

from django.dispatch import receiver

from config.errors import ApplicationError, ErrorCode
from partnerships.models import EndUser
from triggers.signals import trigger_event_retrying

from .models import Reversal
from .reports.days import reports_reopen_days
from .reports.maintain import reports_retract_failure


@receiver(trigger_event_retrying, dispatch_uid="rewards.refuse_reversed")
def refuse_reversed(*, event, **kwargs) -> None:
    # A reversal locks the event row first too: under its lock, this sees every committed one.
    if Reversal.objects.filter(trigger_event_id=event.pk).exists():
        raise ApplicationError(
            409,
            ErrorCode.TRIGGER_EVENT_NOT_RETRYABLE,
            "The event was reversed; it cannot be retried",
        )


@receiver(trigger_event_retrying, dispatch_uid="rewards.refuse_erased")
def refuse_erased(*, event, **kwargs) -> None:
    # Erasure locks its user's events first: under this one's lock, it is done or not begun.
    if EndUser.objects.filter(pk=event.end_user_id, erased_at__isnull=False).exists():
        raise ApplicationError(
            409,
            ErrorCode.TRIGGER_EVENT_NOT_RETRYABLE,
            "The event's user was erased; it cannot be retried (its context is gone)",
        )


@receiver(trigger_event_retrying, dispatch_uid="rewards.retract_failure")
def retract_failure(*, event, **kwargs) -> None:
    if event.processed_at is None:  # never counted (a failed event has one once recorded)
        return
    reports_retract_failure(event=event)
    reports_reopen_days(
        partnership_id=event.partnership_id,
        mode=event.mode,
        at=event.processed_at,
    )
