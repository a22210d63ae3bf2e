from django.db import migrations, models


class Migration(migrations.Migration):
    """Existing endpoints keep hearing both modes (partners' test integrations must not go
    silent); new ones default to live only."""

    dependencies = [
        ("rewards", "0006_reversal_mode"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="modes",
            field=models.CharField(
                choices=[("live", "Live only"), ("test", "Test only"), ("both", "Live and test")],
                default="both",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="modes",
            field=models.CharField(
                choices=[("live", "Live only"), ("test", "Test only"), ("both", "Live and test")],
                default="live",
                max_length=8,
            ),
        ),
    ]
