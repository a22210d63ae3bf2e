"""gunicorn's settings for this service (the command line's options add to these):

    gunicorn -c python:config.gunicorn config.wsgi:application


- Metrics across workers: with ``PROMETHEUS_MULTIPROC_DIR`` set, a worker that exits is marked
  dead, so its files stop counting as live (config/metrics.py).
- ``LOG_FORMAT=json``: gunicorn's own lines (its errors, and the access log when one is asked
  for) in the JSON of config/logs.py, like the application's.
"""

import os


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# The access log's line: the request line (path and query, never headers: API keys and user
# tokens travel in headers), status, size, duration in microseconds, user agent.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)s "%(a)s"'

if os.environ.get("LOG_FORMAT") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.logs.JsonFormatter"}},
        "handlers": {
            "error": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["error"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
