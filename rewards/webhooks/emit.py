import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import models, transaction
from django.utils import timezone

from .models import WebhookDelivery, WebhookEventType
from .selectors import webhook_endpoint_ids_subscribed
from .tasks import send_due_webhooks

logger = logging.getLogger(__name__)


def reward_payload(reward) -> dict:
    """The reward as partners see it; ``reward`` is a model or an evaluation row."""
    amount, reversed_amount = reward.amount, reward.reversed_amount
    if isinstance(reward, models.Model):  # read back: six places, shown in the unit's
        step = reward.partnership.unit_step
        amount, reversed_amount = amount.quantize(step), reversed_amount.quantize(step)
    return {
        "reward_id": str(reward.id),
        "campaign_id": str(reward.campaign_id),
        "trigger_event_id": str(reward.trigger_event_id),
        "user_uuid": str(reward.end_user_id),
        "amount": str(amount),
        "reversed_amount": str(reversed_amount),
        "unit": reward.unit,
        "mode": reward.mode,
        "status": reward.status,
        "issued_at": reward.issued_at.isoformat(),
    }


def trigger_event_payload(event) -> dict:
    return {
        "trigger_event_id": str(event.id),
        "user_uuid": str(event.end_user_id),
        "error": event.error,
        "mode": event.mode,
    }


@dataclass(frozen=True)
class CampaignNotice:
    """The subject of a ``campaign.*`` webhook: a campaign (its partnership loaded) in one mode,
    the budget it was judged against, its counter's figures then, and what the type adds
    (``details``, in payload form already)."""

    campaign: models.Model
    mode: str
    budget: Decimal | None
    spent: Decimal
    rewards: int
    details: dict

    @property
    def partnership_id(self) -> uuid.UUID:
        return self.campaign.partnership_id


def campaign_payload(notice: CampaignNotice) -> dict:
    campaign, partnership = notice.campaign, notice.campaign.partnership
    step, budget = partnership.unit_step, notice.budget
    return {
        "campaign_id": str(campaign.id),
        "campaign_slug": campaign.slug,
        "campaign_name": campaign.name,
        "mode": notice.mode,
        "unit": partnership.reward_unit,
        "budget": None if budget is None else str(budget.quantize(step)),
        "spent": str(notice.spent.quantize(step)),
        "left": None if budget is None else str(max(budget - notice.spent, 0).quantize(step)),
        "rewards": notice.rewards,
        **notice.details,
    }


_PAYLOADS: dict[str, Callable[..., dict]] = {
    WebhookEventType.REWARD_ISSUED: reward_payload,
    WebhookEventType.REWARD_REVERSED: reward_payload,
    WebhookEventType.TRIGGER_EVENT_FAILED: trigger_event_payload,
    WebhookEventType.CAMPAIGN_BUDGET_EXHAUSTED: campaign_payload,
    WebhookEventType.CAMPAIGN_BUDGET_LOW: campaign_payload,
    WebhookEventType.CAMPAIGN_ENDED: campaign_payload,
}


def webhook_event_emit(*, event_type: WebhookEventType, subjects: Iterable) -> int:
    """Writes a delivery of each subject to every endpoint of its partnership that receives
    ``event_type`` in the subject's mode (live or test), and wakes the sender after commit;
    returns how many.

    Call it in the transaction that writes the subjects: their deliveries commit with them or
    not at all (an outbox). ``subjects``: rewards (models or the evaluation's rows) for
    ``reward.*``, trigger events for ``trigger_event.failed``, ``CampaignNotice`` for
    ``campaign.*`` (``rewards.services.notices``).
    """
    payload = _PAYLOADS[event_type]
    now = timezone.now()
    deliveries = []
    subscribed: dict[tuple, list] = {}  # (partnership, mode) -> endpoint ids: ~10 per event
    for subject in subjects:
        key = (subject.partnership_id, subject.mode)
        endpoint_ids = subscribed.get(key)
        if endpoint_ids is None:
            endpoint_ids = subscribed[key] = webhook_endpoint_ids_subscribed(
                partnership_id=subject.partnership_id, event_type=event_type, mode=subject.mode
            )
        data = payload(subject) if endpoint_ids else None
        for endpoint_id in endpoint_ids:
            delivery_id = uuid.uuid4()
            deliveries.append(
                WebhookDelivery(
                    id=delivery_id,
                    endpoint_id=endpoint_id,
                    event_type=event_type,
                    mode=subject.mode,
                    payload={
                        "id": str(delivery_id),
                        "type": event_type,
                        "created_at": now.isoformat(),
                        "data": data,
                    },
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        transaction.on_commit(webhook_sender_wake)
    return len(deliveries)


def webhook_sender_wake() -> None:
    try:
        send_due_webhooks.apply_async(retry=False)
    except Exception:
        logger.warning("Could not wake the webhook sender; the scheduler will", exc_info=True)
