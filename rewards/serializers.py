from decimal import Decimal

from rest_framework import serializers

from .models import Reward


def amount_for_display(reward: Reward) -> str:
    """The amount with the partnership's decimal places: "2.13", "100.00"."""
    places = reward.partnership.reward_decimal_places
    return str(reward.amount.quantize(Decimal(1).scaleb(-places)))


class RewardOutputSerializer(serializers.Serializer):
    reward_id = serializers.UUIDField(source="id")
    campaign_id = serializers.UUIDField()
    campaign = serializers.CharField(source="campaign.slug")
    campaign_version = serializers.IntegerField()
    trigger_event_id = serializers.UUIDField()
    amount = serializers.SerializerMethodField()
    unit = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    issued_at = serializers.DateTimeField()
    occurred_at = serializers.DateTimeField()

    def get_amount(self, reward: Reward) -> str:
        return amount_for_display(reward)


class DecisionSerializer(serializers.Serializer):
    campaign_id = serializers.UUIDField()
    campaign = serializers.CharField(help_text="The campaign's slug")
    outcome = serializers.CharField(
        help_text="rewarded, condition_false, zero_amount, budget_exhausted, count_cap_reached, "
        "user_cap_reached, period_cap_reached, outside_schedule, skipped_exclusive or error"
    )
    amount = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
