from django.db.models.signals import post_save
from django.dispatch import receiver

from campaigns.models import Campaign

from .models import MODES, CampaignCounter


@receiver(post_save, sender=Campaign)
def create_counters(sender, instance: Campaign, created: bool, **kwargs) -> None:
    """Counters exist before any evaluation locks them (creating them there could deadlock)."""
    if created:
        CampaignCounter.objects.bulk_create(
            [CampaignCounter(campaign=instance, mode=mode) for mode, _ in MODES],
            ignore_conflicts=True,
        )
