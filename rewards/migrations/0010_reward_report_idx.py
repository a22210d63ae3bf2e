"""Rewards by (partnership, mode, issued_at, id): unique users of a range read from the index
alone, and exports page through it by key; adjustments by created_at, for the liability of the
last bucket. Built CONCURRENTLY: rewards keep being issued."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("rewards", "0009_reports"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="reward",
            index=models.Index(
                fields=["partnership", "mode", "issued_at", "id"],
                include=["end_user", "campaign"],
                name="reward_report_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="rewardadjustment",
            index=models.Index(fields=["created_at"], name="adjustment_created_idx"),
        ),
    ]
