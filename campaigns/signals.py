from enum import StrEnum

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from config.localcache import config_cache

from .models import Campaign


@receiver([post_save, post_delete], sender=Campaign)
def invalidate_config_cache(**kwargs) -> None:
    config_cache.invalidate()


class EndedBy(StrEnum):
    OPERATOR = "operator"  # End (or Delete of an approved campaign): Pilot, the API, config
    SCHEDULE = "schedule"  # beat's end_expired_campaigns: no event can reach it any more


# Sent in the transaction that ends campaigns, with ``campaigns`` (the rows just ended, locked,
# their partnership loaded), ``ended_at`` and ``by`` (``EndedBy``): by ``lifecycle.campaign_end``
# and by ``services.campaigns_end_expired``, the only two ways to ``ended``, which is final: so
# once per campaign. The apps above write what an ending means to them with it (rewards: the
# ``campaign.ended`` webhook), committed with the status or not at all; a receiver that raises
# undoes the ending.
campaigns_ended = Signal()
