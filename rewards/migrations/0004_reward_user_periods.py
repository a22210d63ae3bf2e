import datetime

import django.contrib.postgres.fields
from django.db import migrations, models


def period_key(period, at):
    """The calendar period (UTC) an event fell in, as the counters named it at the time."""
    day = at.astimezone(datetime.timezone.utc).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def backfill(apps, schema_editor):
    """Rewards issued before this field existed were counted under the campaign's limits of
    the time; its current limits are the best record of them we have. (Inlined: a migration
    must not import application code, which changes after it.)"""
    Reward = apps.get_model("rewards", "Reward")
    Campaign = apps.get_model("campaigns", "Campaign")
    for campaign in Campaign.objects.all():
        per_user = any(
            limit is not None
            for limit in (
                campaign.max_rewards_per_user,
                campaign.max_rewards_per_user_per_period,
                campaign.max_amount_per_user,
            )
        )
        if not per_user:
            continue
        rewards = list(Reward.objects.filter(campaign_id=campaign.id).only("id", "occurred_at"))
        for reward in rewards:
            reward.user_periods = [""]
            if campaign.period:
                reward.user_periods.append(period_key(campaign.period, reward.occurred_at))
        Reward.objects.bulk_update(rewards, ["user_periods"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("rewards", "0003_delivery_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="reward",
            name="user_periods",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=16), blank=True, default=list, size=None
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
