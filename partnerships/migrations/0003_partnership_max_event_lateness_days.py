import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    """Existing partnerships get NULL (no bound, as before); new ones default to 30 days."""

    dependencies = [
        ("partnerships", "0002_reward_precision_and_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="partnership",
            name="max_event_lateness_days",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="partnership",
            name="max_event_lateness_days",
            field=models.PositiveSmallIntegerField(
                blank=True,
                default=30,
                help_text="Events whose occurred_at is older than this many days are refused "
                "(1 to 366; empty: no bound). A campaign still judges late events this long "
                "after it ends.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(366),
                ],
            ),
        ),
    ]
