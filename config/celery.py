import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaign_rewards")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Keep worker database connections open across tasks: Celery's Django fixup otherwise closes
# them around every task (a new connection per task, ~3x slower here).
app.conf.CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
app.autodiscover_tasks()


@task_prerun.connect
def drop_broken_connections(**kwargs) -> None:
    """A kept connection that hit a database error is checked before the next task, and closed
    if dead (the server restarted, a failover), so the task reconnects: Celery's fixup never
    checks a reused connection, and psycopg refuses every query on a dead one forever. Only
    after an error (Django's ``errors_occurred``): no ``SELECT 1`` per task. Per thread, so the
    webhook sender's thread pool is covered too."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()
