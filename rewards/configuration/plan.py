"""What applying a document would do, object by object: create, change (each field before ->
after) or delete, and what that means for each (a change of an approved campaign that needs
approval waits for it; a deleted campaign that ran is ended; a deleted trigger that events or
campaigns reference is archived)."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

from campaigns.models import Campaign
from campaigns.versions import needs_approval
from config.errors import field_error
from rewards.webhooks.models import WebhookDelivery
from triggers.models import Trigger, TriggerEvent

from .document import Document, invalid, webhook_key, webhook_order
from .state import State

Status = Campaign.Status


class Kind(StrEnum):
    SETTINGS = "settings"
    TRIGGER = "trigger"
    CAMPAIGN = "campaign"
    WEBHOOK = "webhook"


class Action(StrEnum):
    CREATE = "create"
    CHANGE = "change"
    DELETE = "delete"


class Outcome(StrEnum):
    """What an action does to the object."""

    CREATED = "created"
    APPLIED = "applied"  # changed at once
    DRAFT = "draft"  # a campaign created, or changed in place, as a draft (not live)
    BACK_TO_DRAFT = "back_to_draft"  # a submitted campaign changed: submit it again
    AWAITS_APPROVAL = "awaits_approval"  # the live campaign is unchanged until approved
    ENDED = "ended"
    ARCHIVED = "archived"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    kind: Kind
    key: str  # the trigger's name, the campaign's slug, the endpoint's "url (modes)"
    action: Action
    outcome: Outcome
    fields: dict[str, list] = field(default_factory=dict)  # field -> [before, after]
    status: str = ""  # a campaign's lifecycle status before the change
    target: object = None  # the row acted on (None: created)
    desired: dict | None = None  # the object as the document says (None: deleted)

    def as_dict(self) -> dict:
        data = {
            "kind": str(self.kind),
            "key": self.key,
            "action": str(self.action),
            "outcome": str(self.outcome),
            "fields": self.fields,
        }
        if self.status:
            data["status"] = self.status
        return data


@dataclass(frozen=True)
class Plan:
    fingerprint: (
        str  # of the configuration it was made against and the document (``plan_fingerprint``)
    )
    changes: tuple[Change, ...]

    @property
    def approvals(self) -> list[str]:
        """The campaigns whose change would wait for approval (the live one unchanged)."""
        return [c.key for c in self.changes if c.outcome == Outcome.AWAITS_APPROVAL]

    def as_dict(self) -> dict:
        counts = defaultdict(int)
        for change in self.changes:
            counts[str(change.action)] += 1
        return {
            "fingerprint": self.fingerprint,
            "summary": {action: counts[action] for action in Action},
            "needs_approval": self.approvals,
            "changes": [change.as_dict() for change in self.changes],
        }


def _diff(before: dict, after: dict) -> dict[str, list]:
    return {name: [before[name], after[name]] for name in after if before[name] != after[name]}


def _created(after: dict) -> dict[str, list]:
    return {name: [None, value] for name, value in after.items()}


def _kept(
    kind: Kind,
    key: str,
    target,
    before: dict | None,
    desired: dict,
    outcome: Callable[[dict], Outcome] = lambda fields: Outcome.APPLIED,
    status: str = "",
) -> list[Change]:
    """An object the document keeps: created if ``target`` is None, else changed if it differs
    (``outcome`` says what the change does)."""
    if target is None:
        created = Outcome.DRAFT if kind == Kind.CAMPAIGN else Outcome.CREATED
        return [Change(kind, key, Action.CREATE, created, _created(desired), desired=desired)]
    if not (fields := _diff(before, desired)):
        return []
    return [
        Change(
            kind,
            key,
            Action.CHANGE,
            outcome(fields),
            fields,
            status=status,
            target=target,
            desired=desired,
        )
    ]


def _settings(state: State, document: Document) -> list[Change]:
    """Settings the document leaves out are left as they are."""
    fields = {
        name: [state.document.settings[name], value]
        for name, value in document.settings.items()
        if state.document.settings[name] != value
    }
    if not fields:
        return []
    return [
        Change(
            Kind.SETTINGS,
            "settings",
            Action.CHANGE,
            Outcome.APPLIED,
            fields,
            target=state.partnership,
            desired=document.settings,
        )
    ]


def _triggers(state: State, document: Document, deleted_campaigns: set) -> list[Change]:
    changes = []
    for name, desired in document.triggers.items():
        trigger = state.triggers.get(name)
        before = state.document.triggers.get(name)
        changes += _kept(Kind.TRIGGER, name, trigger, before, desired)
    for name, trigger in state.triggers.items():
        if name in document.triggers:
            continue
        if _trigger_referenced(trigger, deleted_campaigns):
            if trigger.status == Trigger.Status.ARCHIVED:
                continue  # retired already: kept for what references it
            fields = {"status": [trigger.status, Trigger.Status.ARCHIVED]}
            outcome = Outcome.ARCHIVED
        else:
            fields, outcome = {}, Outcome.DELETED
        changes.append(Change(Kind.TRIGGER, name, Action.DELETE, outcome, fields, target=trigger))
    return changes


def _trigger_referenced(trigger: Trigger, deleted_campaigns: set) -> bool:
    """Events, or campaigns that stay (ended ones too: their rewards name them), reference it."""
    campaigns = Campaign.objects.filter(trigger=trigger).exclude(pk__in=deleted_campaigns)
    return campaigns.exists() or TriggerEvent.objects.filter(trigger=trigger).exists()


def _campaign_change(campaign: Campaign, fields: dict) -> Outcome:
    """What ``campaigns.lifecycle.campaign_change`` does with this change."""
    if campaign.status == Status.DRAFT:
        return Outcome.DRAFT
    if campaign.status == Status.SUBMITTED:
        return Outcome.BACK_TO_DRAFT
    named = {"trigger_id" if name == "trigger" else name: pair for name, pair in fields.items()}
    return Outcome.AWAITS_APPROVAL if needs_approval(named) else Outcome.APPLIED


def _campaigns(state: State, document: Document) -> tuple[list[Change], list[dict]]:
    changes, errors = [], []
    for slug, desired in document.campaigns.items():
        if slug in state.ended:
            errors.append(
                field_error(
                    f"campaigns[{slug}].slug",
                    "campaign_ended",
                    f"The campaign {slug!r} has ended and cannot be changed; give a new "
                    "campaign another slug.",
                )
            )
            continue
        campaign = state.campaigns.get(slug)
        changes += _kept(
            Kind.CAMPAIGN,
            slug,
            campaign,
            state.document.campaigns.get(slug),
            desired,
            partial(_campaign_change, campaign),
            campaign.status if campaign else "",
        )
    for slug, campaign in state.campaigns.items():
        if slug in document.campaigns:
            continue
        approved = campaign.status in (Status.ACTIVE, Status.PAUSED)
        changes.append(
            Change(
                Kind.CAMPAIGN,
                slug,
                Action.DELETE,
                Outcome.ENDED if approved else Outcome.DELETED,
                {"status": [campaign.status, Status.ENDED]} if approved else {},
                status=campaign.status,
                target=campaign,
            )
        )
    return changes, errors


def _webhooks(state: State, document: Document) -> list[Change]:
    """Endpoints are matched by URL and modes. Of several with one URL and modes, one the
    document lists exactly as it is stays itself (reordering the document changes nothing);
    the rest are matched one to one in ``webhook_order`` (then by id), not as listed."""
    current, desired = defaultdict(list), defaultdict(list)
    for exported, endpoint in state.webhooks:
        current[webhook_key(exported)].append((exported, endpoint))
    for item in document.webhooks:
        desired[webhook_key(item)].append(item)
    changes = []
    for key in sorted(current.keys() | desired.keys()):
        have, want = _unchanged_removed(current[key], desired[key])
        have.sort(key=lambda pair: (webhook_order(pair[0]), pair[1].pk))
        want.sort(key=webhook_order)
        for (exported, endpoint), item in zip(have, want, strict=False):
            changes += _kept(Kind.WEBHOOK, key, endpoint, exported, item)
        for item in want[len(have) :]:
            changes += _kept(Kind.WEBHOOK, key, None, None, item)
        for exported, endpoint in have[len(want) :]:
            change = _webhook_delete(key, exported, endpoint)
            if change is not None:
                changes.append(change)
    return changes


def _unchanged_removed(have: list[tuple], want: list[dict]) -> tuple[list[tuple], list[dict]]:
    """``have`` and ``want`` without the pairs that are equal (nothing to change there)."""
    have, want = list(have), list(want)
    for pair in list(have):
        if pair[0] in want:
            want.remove(pair[0])
            have.remove(pair)
    return have, want


def _webhook_delete(key: str, exported: dict, endpoint) -> Change | None:
    """An endpoint with deliveries keeps them (their history): it is deactivated instead."""
    if WebhookDelivery.objects.filter(endpoint=endpoint).exists():
        if not exported["active"]:
            return None  # retired already
        return Change(
            Kind.WEBHOOK,
            key,
            Action.DELETE,
            Outcome.DEACTIVATED,
            {"active": [True, False]},
            target=endpoint,
        )
    return Change(Kind.WEBHOOK, key, Action.DELETE, Outcome.DELETED, target=endpoint)


def plan_fingerprint(state: State, document: Document) -> str:
    """SHA-256 of the configuration's fingerprint and the canonical document: what an apply
    checks, so that a plan's fingerprint applies that plan and no other document."""
    text = json.dumps(
        {"state": state.fingerprint, "document": document.as_dict()},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def configuration_diff(*, state: State, document: Document) -> Plan:
    """The plan of ``document`` against ``state``; raises 422 for what no apply could do."""
    campaigns, errors = _campaigns(state, document)
    if errors:
        raise invalid(errors)
    deleted = {
        c.target.pk for c in campaigns if c.action == Action.DELETE and c.outcome == Outcome.DELETED
    }
    changes = [
        *_settings(state, document),
        *_triggers(state, document, deleted),
        *campaigns,
        *_webhooks(state, document),
    ]
    return Plan(plan_fingerprint(state, document), tuple(changes))
