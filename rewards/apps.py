from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards"

    def ready(self) -> None:
        from . import retry  # noqa: F401
        from .services import notices  # noqa: F401 - campaign.ended, on campaigns_ended
        from .webhooks import signals as webhook_signals  # noqa: F401
