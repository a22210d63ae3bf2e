from decimal import Decimal

from rest_framework import serializers

from campaigns.decisions import Outcome

from .models import Reward


def amount_for_display(reward: Reward) -> str:
    """The amount with the partnership's decimal places: "2.13", "100.00"."""
    return _display(reward.amount, reward)


class RewardOutputSerializer(serializers.Serializer):
    reward_id = serializers.UUIDField(source="id")
    campaign_id = serializers.UUIDField()
    campaign = serializers.CharField(source="campaign.slug")
    campaign_version = serializers.IntegerField()
    trigger_event_id = serializers.UUIDField()
    amount = serializers.SerializerMethodField()
    reversed_amount = serializers.SerializerMethodField()
    unit = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    issued_at = serializers.DateTimeField()
    occurred_at = serializers.DateTimeField()

    def get_amount(self, reward: Reward) -> str:
        return amount_for_display(reward)

    def get_reversed_amount(self, reward: Reward) -> str:
        return _display(reward.reversed_amount, reward)


class DecisionSerializer(serializers.Serializer):
    campaign_id = serializers.UUIDField()
    campaign = serializers.CharField(help_text="The campaign's slug")
    outcome = serializers.CharField(help_text=", ".join(Outcome))
    amount = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_blank=True)


class AdjustmentOutputSerializer(serializers.Serializer):
    reward_id = serializers.UUIDField()
    campaign = serializers.CharField(source="reward.campaign.slug")
    amount = serializers.SerializerMethodField(help_text="Clawed back by this reversal")
    remaining = serializers.SerializerMethodField(help_text="What is left of the reward")
    reward_status = serializers.CharField(source="reward.status")

    def get_amount(self, adjustment) -> str:
        return _display(adjustment.amount, adjustment.reward)

    def get_remaining(self, adjustment) -> str:
        return _display(adjustment.reward.remaining, adjustment.reward)


class ReversalOutputSerializer(serializers.Serializer):
    reversal_id = serializers.UUIDField(source="id")
    trigger_event_id = serializers.UUIDField()
    mode = serializers.CharField(help_text="live or test: the mode of the key and of the event")
    cancelled_event = serializers.BooleanField(
        help_text="The event had not been evaluated: it was cancelled, nothing was issued"
    )
    reason = serializers.CharField(allow_blank=True)
    requested_amount = serializers.DecimalField(
        max_digits=18, decimal_places=6, allow_null=True, coerce_to_string=True
    )
    created_at = serializers.DateTimeField()
    reversals = AdjustmentOutputSerializer(many=True, source="adjustments.all")


def _display(amount: Decimal, reward: Reward) -> str:
    return str(amount.quantize(reward.partnership.unit_step))


def exact_amount(amount: Decimal, places: int) -> str:
    """With ``places`` decimals, or more where the amount has finer digits: never rounded
    (a sum of amounts stored before the partnership's decimal places changed can have them)."""
    shown = amount.quantize(Decimal(1).scaleb(-places))
    return format(shown if shown == amount else amount.normalize(), "f")
