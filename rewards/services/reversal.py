"""Reversing a trigger event (a refund): cancel it if not yet evaluated, else claw back.

Locks are taken in the order of ``rewards.locks``: the event row, its rewards, then the
campaigns' counter rows. A worker that is evaluating the event holds its row until it commits,
so a reversal waits for it and then reverses what it issued; a reversal that locks a queued event
first cancels it, and the workers' claim (``SKIP LOCKED``, queued only) never sees it again.
Either way no reward of a reversed event survives.

A request with an Idempotency-Key first takes a transaction-scoped advisory lock on
(partnership, mode, key), before any row lock (workers take none, so no cycle can form).
A retry sent while the first request runs waits for it, then finds its reversal and answers
with it: both get the same answer, never a 200 and an ``already_reversed``.

Everything is scoped to the key's mode: a test key cannot reverse a live event, and a key
used in one mode is free in the other.
"""

import hashlib
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import orjson
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.metrics import rewards_reversed
from partnerships.auth import PartnerPrincipal
from partnerships.models import Partnership
from partnerships.services import audit_record
from triggers.models import TriggerEvent

from ..locks import campaign_counters_lock
from ..models import CampaignCounter, Reversal, Reward, RewardAdjustment, UserCounter
from ..reports.maintain import reports_record_reversed
from ..webhooks import WebhookEventType, webhook_event_emit


@dataclass(frozen=True)
class ReversalRequest:
    trigger_event_id: uuid.UUID | None
    trigger_name: str | None
    external_user_id: str | None
    reason: str
    amount: Decimal | None
    idempotency_key: str | None
    # One reward of the event only (Pilot's "Reverse" on a reward); None: all of them.
    reward_id: uuid.UUID | None = None
    # That reward's reversed amount as the operator saw it: refused if it changed meanwhile.
    # A condition of the request, not part of it (not in the fingerprint).
    reversed_amount_seen: Decimal | None = None

    @property
    def fingerprint(self) -> str:
        # Spelled out (the idempotency key itself excluded): stored hashes must not change when
        # a field is added to the request.
        fields = [
            str(self.trigger_event_id),
            str(self.trigger_name),
            str(self.external_user_id),
            str(self.reason),
            str(self.amount),
        ]
        if self.reward_id is not None:
            fields.append(str(self.reward_id))
        return hashlib.sha256(orjson.dumps(fields)).hexdigest()


@dataclass(frozen=True)
class OperatorPrincipal:
    """A Pilot operator reversing in one partnership and mode, as a partner's key would
    (``principal.partnership.id``, ``principal.mode``); recorded as ``Reversal.operator``."""

    partnership: Partnership
    mode: str
    operator: object  # the auth user


@dataclass(frozen=True)
class ReversalResult:
    reversal: Reversal
    replayed: bool


def trigger_event_reverse(
    *, principal: PartnerPrincipal | OperatorPrincipal, request: ReversalRequest
) -> ReversalResult:
    with transaction.atomic():
        if request.idempotency_key:
            _idempotency_lock(principal, request.idempotency_key)
            # After the lock: a statement of its own, so it sees what a twin committed.
            replay = _replay(principal, request)
            if replay:
                return replay
        return ReversalResult(_reverse(principal, request), replayed=False)


_IDEMPOTENCY_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def _idempotency_lock(principal: PartnerPrincipal, key: str) -> None:
    """Held until the transaction ends. Must be the transaction's first lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            _IDEMPOTENCY_LOCK, [f"reversal:{principal.partnership.id}:{principal.mode}:{key}"]
        )


def _replay(principal: PartnerPrincipal, request: ReversalRequest) -> ReversalResult | None:
    existing = Reversal.objects.filter(
        partnership_id=principal.partnership.id,
        mode=principal.mode,
        idempotency_key=request.idempotency_key,
    ).first()
    if existing is None:
        return None
    if existing.request_hash != request.fingerprint:
        raise ApplicationError(
            409,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used with a different request",
        )
    return ReversalResult(existing, replayed=True)


def _reverse(principal: PartnerPrincipal, request: ReversalRequest) -> Reversal:
    event = _locked_event(principal, request)
    reversal = Reversal(
        partnership_id=principal.partnership.id,
        trigger_event=event,
        mode=event.mode,
        reason=request.reason,
        requested_amount=request.amount,
        idempotency_key=request.idempotency_key,
        request_hash=request.fingerprint,
        operator=getattr(principal, "operator", None),
    )
    if event.status in (TriggerEvent.Status.SCHEDULED, TriggerEvent.Status.QUEUED):
        if request.amount is not None:
            raise validation_error(
                [field_error("amount", "not_evaluated", "The event has no rewards yet")]
            )
        event.status = TriggerEvent.Status.CANCELLED
        event.error = f"reversed before evaluation: {request.reason}".strip(": ")
        event.save(update_fields=["status", "error"])
        reversal.cancelled_event = True
        reversal.save()
        return reversal

    standing = Reward.objects.filter(trigger_event=event, status=Reward.Status.ISSUED)
    if request.reward_id is not None:
        standing = standing.filter(pk=request.reward_id)
    rewards = list(
        # Only the rewards: locking the joined campaign row would block the workers' inserts
        # (their foreign key takes a share lock on it) while they hold the counters we need.
        standing.select_for_update(of=("self",))
        .select_related("campaign", "partnership")
        .order_by("id")
    )
    if not rewards and request.reward_id is not None:
        raise ApplicationError(409, ErrorCode.ALREADY_REVERSED, "The reward is already reversed")
    if not rewards and event.reversals.exists():
        raise ApplicationError(409, ErrorCode.ALREADY_REVERSED, "The event is already reversed")
    seen = request.reversed_amount_seen
    if seen is not None and rewards and rewards[0].reversed_amount != seen:
        raise ApplicationError(
            409,
            ErrorCode.REWARD_CHANGED,
            f"The reward was reversed meanwhile: {rewards[0].reversed_amount.normalize():f} of it "
            "is reversed now. Check what remains and submit again",
        )
    shares = _shares(rewards, request.amount)
    reversal.save()
    _give_back(rewards, shares)
    adjustments = RewardAdjustment.objects.bulk_create(
        RewardAdjustment(reversal=reversal, reward=reward, amount=share)
        for reward, share in zip(rewards, shares, strict=True)
        if share > 0
    )
    reports_record_reversed(adjustments=adjustments, trigger_id=event.trigger_id)
    rewards_reversed(modes=(adjustment.reward.mode for adjustment in adjustments))
    webhook_event_emit(
        event_type=WebhookEventType.REWARD_REVERSED,
        subjects=[r for r, share in zip(rewards, shares, strict=True) if share > 0],
    )
    return reversal


def _locked_event(principal: PartnerPrincipal, request: ReversalRequest) -> TriggerEvent:
    events = TriggerEvent.objects.filter(
        partnership_id=principal.partnership.id, mode=principal.mode
    )
    if request.trigger_event_id is not None:
        candidate = events.filter(pk=request.trigger_event_id).values_list("pk", flat=True)
    else:
        # The user's most recent event of that trigger that still has something to reverse:
        # one not evaluated yet (it is cancelled), or one with a reward still standing.
        standing = Exists(
            Reward.objects.filter(trigger_event=OuterRef("pk"), status=Reward.Status.ISSUED)
        )
        candidate = (
            events.filter(
                Q(status__in=(TriggerEvent.Status.SCHEDULED, TriggerEvent.Status.QUEUED))
                | Q(status=TriggerEvent.Status.PROCESSED) & standing,
                trigger__name=request.trigger_name,
                end_user__external_user_id=request.external_user_id,
            )
            .order_by("-occurred_at", "-received_at")
            .values_list("pk", flat=True)[:1]
        )
    event = TriggerEvent.objects.select_for_update().filter(pk__in=list(candidate)).first()
    if event is None:
        raise ApplicationError(
            404,
            ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST,
            f"No trigger event to reverse in {principal.mode} mode",
        )
    if event.status == TriggerEvent.Status.CANCELLED:
        raise ApplicationError(409, ErrorCode.ALREADY_REVERSED, "The event was cancelled")
    return event


def _shares(rewards: list[Reward], amount: Decimal | None) -> list[Decimal]:
    """How much to claw back from each reward: all of it, or ``amount`` split in proportion
    to what remains of each, in the unit's decimal places, summing exactly to ``amount``."""
    remaining = [reward.remaining for reward in rewards]
    if amount is None:
        return remaining
    total = sum(remaining, Decimal(0))
    if amount > total:
        raise validation_error(
            [field_error("amount", "max_value", f"At most {total.normalize():f} can be reversed")]
        )
    step = rewards[0].partnership.unit_step
    if amount != amount.quantize(step):
        raise validation_error(
            [field_error("amount", "decimal_places", f"Use at most {step} precision")]
        )
    shares = [(amount * left / total).quantize(step, rounding=ROUND_DOWN) for left in remaining]
    short = amount - sum(shares, Decimal(0))
    for index in sorted(range(len(shares)), key=lambda i: remaining[i], reverse=True):
        if short <= 0:
            break
        extra = min(short, remaining[index] - shares[index])
        shares[index] += extra
        short -= extra
    return shares


def _give_back(rewards: list[Reward], shares: list[Decimal]) -> None:
    """Updates the rewards and returns their amounts (and counts, when fully reversed) to the
    campaign and user counters, under the counters' locks."""
    campaign_counters_lock(
        campaign_ids={reward.campaign_id for reward in rewards},
        modes={reward.mode for reward in rewards},
    )
    for reward, share in zip(rewards, shares, strict=True):
        if share <= 0:
            continue
        reward.reversed_amount += share
        closed = reward.reversed_amount >= reward.amount
        if closed:
            reward.status = Reward.Status.REVERSED
        reward.save(update_fields=["reversed_amount", "status"])
        count = 1 if closed else 0
        CampaignCounter.objects.filter(campaign_id=reward.campaign_id, mode=reward.mode).update(
            spent=F("spent") - share, reward_count=F("reward_count") - count
        )
        if reward.user_periods:  # the counters it was counted in when issued, and only those
            UserCounter.objects.filter(
                campaign_id=reward.campaign_id,
                mode=reward.mode,
                end_user_id=reward.end_user_id,
                period__in=reward.user_periods,
            ).update(amount=F("amount") - share, reward_count=F("reward_count") - count)


def reward_reverse(
    *,
    reward: Reward,
    operator,
    reason: str,
    amount: Decimal | None = None,
    token: uuid.UUID | None = None,
    reversed_amount_seen: Decimal | None = None,
) -> ReversalResult:
    """Pilot's "Reverse" on one reward: the partner API's reversal (``trigger_event_reverse``)
    of this reward only, all of what remains or ``amount`` of it, with the operator recorded on
    the reversal and in the audit log (``reward.reverse``), in one transaction. Raises the
    API's errors (``ApplicationError``: already reversed, an amount above what remains).

    ``token``, the form's one-time token, is the reversal's Idempotency-Key: the same form
    submitted twice reverses once (the second is a replay, not audited again).
    ``reversed_amount_seen``, what the form showed as reversed: refused if another reversal
    changed it meanwhile."""
    principal = OperatorPrincipal(
        partnership=reward.partnership, mode=reward.mode, operator=operator
    )
    request = ReversalRequest(
        trigger_event_id=reward.trigger_event_id,
        trigger_name=None,
        external_user_id=None,
        reason=reason,
        amount=amount,
        idempotency_key=f"pilot:{token}" if token else None,
        reward_id=reward.pk,
        reversed_amount_seen=reversed_amount_seen,
    )
    with transaction.atomic():
        try:
            result = trigger_event_reverse(principal=principal, request=request)
        except ApplicationError as exc:
            if exc.code != ErrorCode.IDEMPOTENCY_KEY_REUSED:
                raise
            raise ApplicationError(
                409,
                exc.code,
                "This form was already submitted with other values: open Reverse again",
            ) from exc
        if result.replayed:
            return result
        audit_record(
            actor=operator,
            action="reward.reverse",
            target=reward,
            partnership=reward.partnership,
            mode=reward.mode,
            changes={
                "amount": str(amount) if amount is not None else "all that remained",
                "reason": reason,
                "reversal": str(result.reversal.pk),
            },
        )
    return result
