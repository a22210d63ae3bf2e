"""Rows for export tests, written directly with the times a test needs (the worker would stamp
them with its clock)."""

import io
from datetime import timedelta
from decimal import Decimal

from django.core.management import call_command
from django.db.models import F

from rewards.models import Reversal, Reward, RewardAdjustment
from tests.factories import RewardFactory


def issue(campaign, *, at, amount="10", mode="live", user=None) -> Reward:
    more = {"end_user": user} if user else {}
    return RewardFactory(
        campaign=campaign,
        issued_at=at,
        occurred_at=at - timedelta(seconds=1),
        amount=Decimal(amount),
        mode=mode,
        **more,
    )


def claw_back(reward: Reward, amount: str, *, at, reason="refund") -> RewardAdjustment:
    reversal = Reversal.objects.create(
        partnership=reward.partnership,
        trigger_event=reward.trigger_event,
        mode=reward.mode,
        reason=reason,
    )
    adjustment = RewardAdjustment.objects.create(
        reversal=reversal, reward=reward, amount=Decimal(amount)
    )
    RewardAdjustment.objects.filter(pk=adjustment.pk).update(created_at=at)
    Reward.objects.filter(pk=reward.pk).update(
        reversed_amount=F("reversed_amount") + Decimal(amount)
    )
    return adjustment


def run(*args: str) -> tuple[str, str]:
    """``manage.py export_rewards`` with these arguments: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("export_rewards", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()
