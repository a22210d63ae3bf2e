import logging
import uuid

from django.conf import settings
from django.db.models import Q, QuerySet

from config.localcache import config_cache
from partnerships.models import Partnership
from triggers.models import Trigger, TriggerEvent

from .candidates import candidate_list_campaigns
from .compiler import CampaignSpec, TriggerSchema, compile_or_invalid
from .decisions import (
    DecisionView,
    decision_describe,
    decisions_compact,
    decisions_expand,
    stored_campaign_ids,
)
from .engine import CompiledCampaign, InvalidCampaign, Limits
from .models import Campaign, CampaignVersion

logger = logging.getLogger(__name__)


def end_grace_days(*, partnership: Partnership) -> int:
    """How long after its end a campaign still judges late events: the partnership's maximum
    lateness, or ``CAMPAIGN_END_GRACE_DAYS`` where it sets no bound."""
    lateness = partnership.max_event_lateness_days
    return settings.CAMPAIGN_END_GRACE_DAYS if lateness is None else lateness


def campaign_spec(*, campaign: Campaign, grace_days: int = 0) -> CampaignSpec:
    return CampaignSpec(
        id=campaign.id,
        partnership_id=campaign.partnership_id,
        trigger_id=campaign.trigger_id,
        slug=campaign.slug,
        priority=campaign.priority,
        exclusive=campaign.exclusive,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        version=campaign.version,
        condition=campaign.condition,
        facts=campaign.facts,
        reward_type=campaign.reward_type,
        reward_value=campaign.reward_value,
        reward_field=campaign.reward_field,
        reward_expression=campaign.reward_expression,
        reward_min=campaign.reward_min,
        reward_max=campaign.reward_max,
        rounding=campaign.rounding,
        limits=Limits.of(campaign),
        grace_days=grace_days,
        user_schema=campaign.partnership.user_attribute_schema or {},
    )


def trigger_schemas(*, partnership_id: uuid.UUID) -> list[TriggerSchema]:
    """The partnership's triggers, as the campaign compiler reads them."""
    return [
        TriggerSchema(pk, name, schema)
        for pk, name, schema in Trigger.objects.filter(partnership_id=partnership_id).values_list(
            "id", "name", "context_schema"
        )
    ]


def campaign_list_active(*, trigger_id: int) -> list[CompiledCampaign | InvalidCampaign]:
    """A trigger's active campaigns, highest priority first, compiled and cached; one that no
    longer compiles is listed as invalid. Each judges the events that reach us until its end
    plus the partnership's lateness (``candidate_until``, see ``end_grace_days``)."""

    def load() -> list[CompiledCampaign | InvalidCampaign]:
        campaigns = Campaign.objects.filter(
            trigger_id=trigger_id, status=Campaign.Status.ACTIVE
        ).select_related("partnership")
        listed, envs, schemas = [], {}, {}
        for campaign in campaigns:
            if campaign.partnership_id not in schemas:
                schemas[campaign.partnership_id] = trigger_schemas(
                    partnership_id=campaign.partnership_id
                )
            spec = campaign_spec(
                campaign=campaign, grace_days=end_grace_days(partnership=campaign.partnership)
            )
            compiled = compile_or_invalid(spec, schemas[campaign.partnership_id], envs)
            if isinstance(compiled, InvalidCampaign):
                # Saved around the checks (a schema changed outside Pilot, a trigger renamed):
                # every event it would judge says so; the log says it once per load.
                logger.error("Campaign %s does not compile: %s", campaign.id, compiled.errors)
            listed.append(compiled)
        return listed

    return config_cache.get(("campaigns", trigger_id), load)


def trigger_event_decision_records(*, event: TriggerEvent) -> list:
    """The event's stored decisions, one record per campaign in the array form (the compact
    form expanded with its candidate list)."""
    stored = event.decisions or []
    if decisions_compact(stored):
        ids, fact_names = candidate_list_campaigns(list_id=stored["candidates"])
        return decisions_expand(stored, ids, fact_names)
    return stored


def trigger_event_decisions(*, event: TriggerEvent) -> list[DecisionView]:
    """The event's decisions in words, with the campaigns' slugs as they are now."""
    stored = trigger_event_decision_records(event=event)
    if not stored:
        return []
    slugs = dict(
        Campaign.objects.filter(id__in=stored_campaign_ids(stored)).values_list("id", "slug")
    )
    return [decision_describe(item, slugs) for item in stored]


def campaign_get_by_ref(*, partnership_id: uuid.UUID, ref: str) -> Campaign | None:
    """A partnership's campaign named by its id or its slug."""
    try:
        by_id = Q(pk=uuid.UUID(ref))
    except ValueError:
        by_id = Q()
    return Campaign.objects.filter(by_id | Q(slug=ref), partnership_id=partnership_id).first()


def campaigns_held_back_by(*, campaign: Campaign) -> QuerySet[Campaign]:
    """The trigger's other active campaigns that ``campaign``, if exclusive and active, keeps
    from rewarding the events it rewards: those evaluated after it (lower priority, or the
    same priority and created later: ``Campaign.Meta.ordering``). Pausing, ending or capping
    it lets them pay those events."""
    if not campaign.exclusive or campaign.status != Campaign.Status.ACTIVE:
        return Campaign.objects.none()
    after = Q(priority__lt=campaign.priority) | Q(
        priority=campaign.priority, created_at__gt=campaign.created_at
    )
    return (
        Campaign.objects.filter(trigger_id=campaign.trigger_id, status=Campaign.Status.ACTIVE)
        .filter(after)
        .exclude(pk=campaign.pk)
    )


def campaign_pending_change(*, campaign: Campaign) -> CampaignVersion | None:
    """The change awaiting approval: a submitted draft's version, or an approved campaign's
    proposed edit (at most one: a constraint)."""
    return campaign.versions.filter(state=CampaignVersion.State.PROPOSED).first()


def campaign_history(*, campaign: Campaign):
    """Every version, newest first, with the people who wrote and decided it."""
    return campaign.versions.select_related("author", "submitted_by", "approver", "rejected_by")
