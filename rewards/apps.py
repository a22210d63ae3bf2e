from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards"

    def ready(self) -> None:
        from . import retry  # noqa: F401
        from .webhooks import signals as webhook_signals  # noqa: F401
