"""Any change to a key or partnership (Pilot, commands, shell) invalidates the request caches."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from config.localcache import config_cache

from .models import ApiKey, Partnership


@receiver([post_save, post_delete], sender=ApiKey)
@receiver([post_save, post_delete], sender=Partnership)
def invalidate_config_cache(**kwargs) -> None:
    config_cache.invalidate()
