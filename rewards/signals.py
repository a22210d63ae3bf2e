from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from config.localcache import config_cache

from .models import WebhookEndpoint


@receiver([post_save, post_delete], sender=WebhookEndpoint)
def invalidate_config_cache(**kwargs) -> None:
    config_cache.invalidate()
