"""A database default for EndUser.blocked_reason: ingest inserts new users in SQL without
naming it (as do the seeds of benchmarks and tests), and a NOT NULL column without a default
refused them. SET DEFAULT only: no table rewrite."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('partnerships', '0005_audit_and_blocking'),
    ]

    operations = [
        migrations.AlterField(
            model_name='enduser',
            name='blocked_reason',
            field=models.CharField(blank=True, db_default='', default='', editable=False, max_length=500),
        ),
    ]
