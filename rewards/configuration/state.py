"""A partnership's configuration as it is: the export, the objects behind it, and its
fingerprint (what a plan was made against; ``apply`` compares it under the lock)."""

import hashlib
import json
from dataclasses import dataclass

from django.db import connection

from campaigns.models import Campaign, CampaignVersion
from campaigns.versions import campaign_snapshot
from partnerships.models import Partnership
from rewards.webhooks.models import WebhookEndpoint
from triggers.models import Trigger

from .document import (
    CAMPAIGN_FIELDS,
    SETTINGS,
    TRIGGER_FIELDS,
    Document,
    webhook_order,
)


def sorted_json(value):
    """JSON with every object's keys sorted: a stable export, whatever order JSONB keeps."""
    if isinstance(value, dict):
        return {key: sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_json(item) for item in value]
    return value


@dataclass(frozen=True)
class State:
    """The configuration now: as a document, and the rows it came from. Ended campaigns are
    not configuration any more (not exported), but their slugs stay taken (``ended``)."""

    partnership: Partnership
    document: Document
    triggers: dict[str, Trigger]
    campaigns: dict[str, Campaign]
    ended: dict[str, Campaign]
    webhooks: list[tuple[dict, WebhookEndpoint]]
    fingerprint: str


def trigger_exported(trigger: Trigger) -> dict:
    values = {field: getattr(trigger, field) for field in TRIGGER_FIELDS}
    return {**values, "context_schema": sorted_json(trigger.context_schema)}


def campaign_exported(campaign: Campaign, trigger_names: dict[int, str]) -> dict:
    snapshot = campaign_snapshot(campaign=campaign)
    snapshot["trigger"] = trigger_names.get(campaign.trigger_id)
    snapshot["facts"] = sorted_json(snapshot["facts"])
    return {field: snapshot[field] for field in CAMPAIGN_FIELDS}


def webhook_exported(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "modes": endpoint.modes,
        "events": sorted(endpoint.event_types),
        "active": endpoint.active,
    }


_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# How long a plan or apply waits for a lock (another plan or apply of the partnership, a Pilot
# edit in flight) before it gives up (``LockNotAvailable``, 55P03): until its transaction ends,
# so its writes too. A Pilot pause never waits behind a stuck plan for long.
LOCK_TIMEOUT = "5s"


def configuration_lock(*, partnership: Partnership) -> None:
    """Serializes plans and applies of one partnership, until the transaction ends: an
    advisory lock (the partnership row is only locked ``FOR NO KEY UPDATE``: ingest's inserts
    take ``FOR KEY SHARE`` on it and must not wait), then its configuration rows in id order,
    so that a Pilot edit in flight commits before the state is read, or waits until after."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
        cursor.execute(_LOCK, [f"configuration:{partnership.pk}"])
    for model, field in (
        (Partnership, "pk"),
        (Trigger, "partnership"),
        (Campaign, "partnership"),
        (WebhookEndpoint, "partnership"),
    ):
        rows = model.objects.select_for_update(no_key=True).filter(**{field: partnership.pk})
        list(rows.order_by("pk").values_list("pk", flat=True))


def configuration_state(*, partnership: Partnership) -> State:
    """Reads the configuration (lock it first to act on it: ``configuration_lock``). Its
    rows are fresh copies: a run that fails or is rolled back leaves the caller's alone."""
    partnership = Partnership.objects.get(pk=partnership.pk)
    triggers = {t.name: t for t in Trigger.objects.filter(partnership=partnership)}
    names = {trigger.pk: name for name, trigger in triggers.items()}
    campaigns, ended = {}, {}
    for campaign in Campaign.objects.filter(partnership=partnership):
        (ended if campaign.status == Campaign.Status.ENDED else campaigns)[campaign.slug] = campaign
    endpoints = WebhookEndpoint.objects.filter(partnership=partnership).order_by("created_at", "pk")
    webhooks = sorted(
        ((webhook_exported(endpoint), endpoint) for endpoint in endpoints),
        key=lambda pair: webhook_order(pair[0]),
    )
    document = Document(
        settings={
            **{field: getattr(partnership, field) for field in SETTINGS},
            "user_attribute_schema": sorted_json(partnership.user_attribute_schema),
        },
        triggers={name: trigger_exported(trigger) for name, trigger in triggers.items()},
        campaigns={slug: campaign_exported(c, names) for slug, c in campaigns.items()},
        webhooks=[exported for exported, _ in webhooks],
    )
    return State(
        partnership=partnership,
        document=document,
        triggers=triggers,
        campaigns=campaigns,
        ended=ended,
        webhooks=webhooks,
        fingerprint=_fingerprint(document, [*campaigns.values(), *ended.values()]),
    )


def _fingerprint(document: Document, campaigns: list[Campaign]) -> str:
    """SHA-256 of the document and of where each campaign stands (status, version, the change
    awaiting approval): what a plan's outcome depends on."""
    pending = dict(
        CampaignVersion.objects.filter(
            campaign__in=campaigns, state=CampaignVersion.State.PROPOSED
        ).values_list("campaign_id", "pk")
    )
    lifecycle = sorted([c.slug, c.status, c.version, pending.get(c.pk)] for c in campaigns)
    text = json.dumps(
        {"document": document.as_dict(), "lifecycle": lifecycle},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def configuration_export(*, partnership: Partnership) -> dict:
    """The partnership's configuration as a document (``document.document_dump`` writes it)."""
    return configuration_state(partnership=partnership).document.as_dict()
