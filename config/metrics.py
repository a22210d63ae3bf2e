"""Prometheus metrics: every metric the service keeps, and the ``/metrics`` endpoint.

The metrics are defined here, once, and moved by the apps through the small functions below
(one increment per request on the ingest path, a few per batch on the workers'). What they
mean, and what an alert on each would say: docs/operations.md.

Several processes (gunicorn workers, Celery's prefork children) each count their own: with
``PROMETHEUS_MULTIPROC_DIR`` in the environment (read by prometheus_client when it is first
imported), each process writes its values to files in that directory and the endpoint sums
every process's files, those of processes that have exited included (counters stay monotonic).
Without it (tests, ``manage.py runserver``) the values live in the process.

What is read from PostgreSQL at scrape time (the queue's depth and its oldest event) is a
collector passed in by the URL conf, run by the process that serves the scrape.
"""

import functools
import hmac
import ipaddress
import os
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# --- The metrics ------------------------------------------------------------------------------

EVENTS_ACCEPTED = Counter(
    "rewards_events_accepted",
    "Trigger events accepted at the ingest endpoint (replayed: an Idempotency-Key retry "
    "answered with the original event, nothing stored)",
    ["mode", "replayed"],
)
EVENTS_REFUSED = Counter(
    "rewards_events_refused",
    "Requests to the ingest endpoint refused, by the error envelope's code",
    ["code"],
)
EVALUATION_LATENCY = Histogram(
    "rewards_evaluation_latency_seconds",
    "From when an event was due (received, or its deliver_at if delayed) to its outcome "
    "committed, per event",
    ["status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, float("inf")),
)
REWARDS_ISSUED = Counter("rewards_rewards_issued", "Rewards issued", ["mode"])
REWARDS_REVERSED = Counter(
    "rewards_rewards_reversed",
    "Rewards a reversal took an amount back from (all or part of it)",
    ["mode"],
)
WEBHOOK_FAILURES = Counter(
    "rewards_webhook_delivery_failures",
    "Webhook delivery attempts that failed (final: the last attempt, the delivery is failed)",
    ["final"],
)


# --- Moving them ------------------------------------------------------------------------------


def ingest_accepted(*, mode: str, replayed: bool) -> None:
    _accepted(mode, replayed).inc()


@functools.cache
def _accepted(mode: str, replayed: bool):
    """The counter's child per label pair, looked up once: ``labels()`` costs the ingest route
    three times the increment itself (a lock, a tuple, a dict)."""
    return EVENTS_ACCEPTED.labels(mode, "true" if replayed else "false")


def ingest_refused(*, code: str) -> None:
    EVENTS_REFUSED.labels(code).inc()


def evaluation_observed(*, latencies: Iterable[tuple[str, float]]) -> None:
    """Observes (status, seconds) pairs once the caller's transaction commits (nothing if it
    rolls back): a batch costs one increment per bucket it touches, not one per event."""
    by_status: dict[str, list[float]] = {}
    for status, seconds in latencies:
        by_status.setdefault(status, []).append(seconds)
    if by_status:
        transaction.on_commit(functools.partial(_observe_batches, by_status))


def _observe_batches(by_status: dict[str, list[float]]) -> None:
    for status, values in by_status.items():
        histogram_observe_many(EVALUATION_LATENCY.labels(status), values)


def histogram_observe_many(histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for each of ``values``, as one increment per bucket touched and
    one of the sum. prometheus_client observes one value at a time (a lock and, in multiprocess
    mode, a file write per bucket and per sum): this adds what they would add, through the same
    values (its non-cumulative buckets, ``_upper_bounds`` ending in +Inf). A test holds it to
    ``observe``."""
    bounds = histogram._upper_bounds
    buckets = Tally(bisect_left(bounds, value) for value in values)
    histogram._sum.inc(sum(values))
    for index, count in buckets.items():
        histogram._buckets[index].inc(count)


def _count_on_commit(counter: Counter, modes: Iterable[str]) -> None:
    """Counts one per item of ``modes`` (a reward's mode each) once the transaction commits."""
    tally = Tally(modes)
    if tally:
        transaction.on_commit(functools.partial(_count, counter, tally))


def _count(counter: Counter, tally: Tally) -> None:
    for label, count in tally.items():
        counter.labels(label).inc(count)


def rewards_issued(*, modes: Iterable[str]) -> None:
    _count_on_commit(REWARDS_ISSUED, modes)


def rewards_reversed(*, modes: Iterable[str]) -> None:
    _count_on_commit(REWARDS_REVERSED, modes)


def webhook_failed(*, final: bool) -> None:
    WEBHOOK_FAILURES.labels("true" if final else "false").inc()


# --- The endpoint -----------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition(collectors: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every process's metrics (or this one's) and of ``collectors``."""
    if multiprocess_dir():
        registry = CollectorRegistry()  # per scrape, as prometheus_client's guide does
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        scraped.register(collector)
    return text + generate_latest(scraped)


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def scrape_allowed(*, authorization: str, ip: str) -> bool:
    """From ``METRICS_ALLOWED_CIDRS``, or with ``Authorization: Bearer <METRICS_TOKEN>``."""
    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_CIDRS)))


def metrics_view(
    *, collectors: Iterable[Collector], client_ip: Callable[[HttpRequest], str]
) -> Callable[[HttpRequest], HttpResponse]:
    """``/metrics``; ``client_ip``: the address the API's allow-lists see (``NUM_PROXIES``).
    Anyone else gets the 404 of an unknown path: the endpoint is not advertised."""
    collectors = tuple(collectors)

    def metrics(request: HttpRequest) -> HttpResponse:
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        if not scrape_allowed(authorization=authorization, ip=client_ip(request)):
            raise Http404
        return HttpResponse(exposition(collectors), content_type=CONTENT_TYPE_LATEST)

    return metrics
