import logging

from config.localcache import config_cache

from .engine import CompiledCampaign
from .models import Campaign
from .rules import RuleError
from .services import campaign_compile

logger = logging.getLogger(__name__)


def campaign_list_active(*, trigger_id: int) -> list[CompiledCampaign]:
    """Active campaigns listening to a trigger, highest priority first, compiled and cached."""

    def load() -> list[CompiledCampaign]:
        campaigns = Campaign.objects.filter(
            trigger_id=trigger_id, status=Campaign.Status.ACTIVE
        ).select_related("trigger")
        compiled, envs = [], {}
        for campaign in campaigns:
            try:
                compiled.append(campaign_compile(campaign=campaign, envs=envs))
            except RuleError:
                # Saved before a schema change made it invalid: it cannot run; say so loudly.
                logger.error("Campaign %s no longer compiles; skipped", campaign.id, exc_info=True)
        return compiled

    return config_cache.get(("campaigns", trigger_id), load)
