from decimal import Decimal

from django.db import transaction

from .compiler import CampaignInvalid, CampaignSpec, TriggerSchema, compile_campaign
from .models import Campaign, CampaignVersion
from .selectors import campaign_spec, trigger_schemas


def campaign_snapshot(*, campaign: Campaign) -> dict:
    """The rule and reward spec of this version (kept as a ``CampaignVersion``)."""

    def number(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "condition": campaign.condition,
        "facts": campaign.facts,
        "reward_type": campaign.reward_type,
        "reward_value": number(campaign.reward_value),
        "reward_field": campaign.reward_field,
        "reward_expression": campaign.reward_expression,
        "reward_min": number(campaign.reward_min),
        "reward_max": number(campaign.reward_max),
        "rounding": campaign.rounding,
    }


def _compile_errors(spec: CampaignSpec, schemas: list[TriggerSchema]) -> dict[str, str]:
    try:
        compile_campaign(spec, schemas)
    except CampaignInvalid as exc:
        return exc.errors
    return {}


def campaign_validate(*, campaign: Campaign) -> dict[str, str]:
    """Field -> message for everything that would keep the campaign from compiling."""
    if campaign.trigger_id is None or campaign.partnership_id is None:
        return {}  # the form reports the missing fields itself
    return _compile_errors(
        campaign_spec(campaign=campaign), trigger_schemas(partnership_id=campaign.partnership_id)
    )


@transaction.atomic
def campaign_save(*, campaign: Campaign) -> Campaign:
    """Validates and saves; a change to a saved campaign bumps its version."""
    campaign.full_clean()
    if not campaign._state.adding:
        campaign.version += 1
    campaign.save()
    CampaignVersion.objects.create(
        campaign=campaign, version=campaign.version, snapshot=campaign_snapshot(campaign=campaign)
    )
    return campaign
