"""Reward adjustments by (created_at, id): reversal exports page through it by key, and the
liability as of a moment reads the adjustments of its last bucket. Built CONCURRENTLY:
reversals keep being made."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("rewards", "0010_reward_report_idx"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="rewardadjustment",
            index=models.Index(fields=["created_at", "id"], name="adjustment_created_idx"),
        ),
    ]
