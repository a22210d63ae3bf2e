from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards"

    def ready(self) -> None:
        from triggers.services.processing import (
            event_failure_listener_register,
            event_processor_register,
        )

        from . import signals  # noqa: F401
        from .services.evaluation import trigger_events_evaluate, trigger_events_failed_notify
        from .webhooks import signals as webhook_signals  # noqa: F401

        event_processor_register(trigger_events_evaluate)
        event_failure_listener_register(trigger_events_failed_notify)
