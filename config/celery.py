import gc
import os

from celery import Celery
from celery.signals import setup_logging, task_prerun, worker_process_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaign_rewards")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Keep worker database connections open across tasks: Celery's Django fixup otherwise closes
# them around every task (a new connection per task, ~3x slower here).
app.conf.CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
app.autodiscover_tasks()


@worker_process_init.connect
def freeze_loaded_objects(**kwargs) -> None:
    """What a worker process loaded before its first task (Django, the apps, Celery, the
    tasks) lives as long as the process: moved out of the collector's reach (as ``config.wsgi``
    does for the web tier), a collection no longer walks those ~130,000 objects. Evaluation and
    backtests allocate a chunk's worth of events at a time, so collections are frequent: a
    backtest replay ran ~1.5x faster with them frozen (docs/benchmarks.md)."""
    gc.freeze()


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


@worker_process_shutdown.connect
def metrics_process_dead(**kwargs) -> None:
    """A prefork child that exits no longer counts as live in the metrics' directory
    (config/metrics.py), as gunicorn's ``child_exit`` does for web workers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


# From the environment, not settings: this module is imported before Django's settings are (a
# process manager sets it for gunicorn's and Celery's processes alike, docs/operations.md).
if os.environ.get("LOG_FORMAT") == "json":

    @setup_logging.connect
    def keep_django_logging(**kwargs) -> None:
        """Celery leaves logging alone (Django's ``LOGGING``, JSON lines) when a receiver takes
        this signal; the level is then ``LOG_LEVEL``'s, not ``-l``'s."""
