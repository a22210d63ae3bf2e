from celery import shared_task

from .services import campaigns_end_expired


@shared_task
def end_expired_campaigns() -> None:
    """Celery beat, every minute: campaigns no event can reach any more become ``ended``."""
    campaigns_end_expired()
