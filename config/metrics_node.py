"""``/metrics`` of a machine that runs workers and no web process: a WSGI application that
serves only that, under the same rules (``METRICS_ALLOWED_CIDRS`` or ``METRICS_TOKEN``)::

    gunicorn -c python:config.gunicorn config.metrics_node:application -w 1 --bind 10.0.0.7:9464

It sums the ``PROMETHEUS_MULTIPROC_DIR`` the machine's workers write to; the queue's gauges,
read from PostgreSQL, come from the web nodes' endpoint. Prometheus scrapes it directly (no
proxy: the peer's address is the client's).
"""

import os
from collections.abc import Callable, Iterable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from prometheus_client import CONTENT_TYPE_LATEST

from config.metrics import exposition, scrape_allowed


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    allowed = scrape_allowed(
        authorization=environ.get("HTTP_AUTHORIZATION", ""), ip=environ.get("REMOTE_ADDR", "")
    )
    if environ.get("PATH_INFO") != "/metrics" or not allowed:
        body = b'{"code": "not_found", "message": "Not found"}'
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [body]
    body = exposition()
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [body]
