from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from config.localcache import config_cache

from .models import Trigger


@receiver([post_save, post_delete], sender=Trigger)
def invalidate_config_cache(**kwargs) -> None:
    config_cache.invalidate()


# Sent by ``trigger_event_retry`` in its transaction, with the event (``event``) locked and
# still failed, before it changes, and the ``operator``. The apps above receive it: a receiver
# refuses the retry by raising ``ApplicationError``, or writes what the retry changes with it.
trigger_event_retrying = Signal()
