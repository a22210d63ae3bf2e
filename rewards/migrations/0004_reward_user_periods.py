import django.contrib.postgres.fields
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Rewards issued before this field existed were counted under the campaign's limits of
    the time; its current limits are the best record of them we have."""
    from campaigns.engine import Limits, period_key

    Reward = apps.get_model("rewards", "Reward")
    Campaign = apps.get_model("campaigns", "Campaign")
    for campaign in Campaign.objects.all():
        limits = Limits.of(campaign)
        if not limits.per_user:
            continue
        rewards = list(Reward.objects.filter(campaign_id=campaign.id).only("id", "occurred_at"))
        for reward in rewards:
            reward.user_periods = [""]
            if limits.period:
                reward.user_periods.append(period_key(limits.period, reward.occurred_at))
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
