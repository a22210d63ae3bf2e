"""Backtests as stored runs: started from Pilot, executed by a Celery task in keyset chunks,
with their progress, a time bound and their results kept with the campaign."""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.compiler import CampaignInvalid, CampaignSpec, compile_campaign
from campaigns.models import Campaign
from campaigns.selectors import campaign_spec, trigger_schemas

from .backtest import Replay, backtest_setup, spec_from_json, spec_to_json
from .events import event_chunks, events_count
from .models import Backtest

logger = logging.getLogger(__name__)


def backtest_start(
    *,
    campaign: Campaign,
    days: int,
    mode: str,
    created_by=None,
    spec: CampaignSpec | None = None,
) -> Backtest:
    """Queues a backtest of ``campaign`` as it stands in memory (unsaved values included), or
    of ``spec``, over the last ``days`` days. Raises ``CampaignInvalid`` if it does not compile
    (nothing is queued then)."""
    spec = spec or campaign_spec(campaign=campaign)
    compile_campaign(spec, trigger_schemas(partnership_id=spec.partnership_id))
    end = timezone.now()
    backtest = Backtest.objects.create(
        campaign_id=campaign.pk,
        spec=spec_to_json(spec),
        mode=mode,
        days=days,
        window_start=end - timedelta(days=days),
        window_end=end,
        created_by=created_by,
    )
    from .tasks import run_backtest  # here: the task's module imports this one

    transaction.on_commit(lambda: run_backtest.delay(str(backtest.pk)))
    return backtest


def backtest_execute(*, backtest_id: uuid.UUID) -> None:
    """Runs a queued backtest to its end, or to ``BACKTEST_MAX_SECONDS`` (then ``timed_out``
    with the results of the events judged so far). Progress is written after every chunk.
    A redelivered run (its worker died) starts over; a finished one is left alone."""
    backtest = Backtest.objects.filter(pk=backtest_id).first()
    if backtest is None or backtest.finished:
        return
    deadline = time.monotonic() + settings.BACKTEST_MAX_SECONDS
    _update(backtest, status=Backtest.Status.RUNNING, started_at=timezone.now(), events_done=0)
    try:
        _replay(backtest, deadline)
    except CampaignInvalid as exc:  # its trigger's schema changed since it was queued
        _finish(backtest, Backtest.Status.FAILED, error=f"The campaign does not compile: {exc}")
    except Exception as exc:  # a bug or the database: the operator sees it, not a spinner
        logger.exception("Backtest %s failed", backtest.pk)
        _finish(backtest, Backtest.Status.FAILED, error=f"{type(exc).__name__}: {exc}")


def _replay(backtest: Backtest, deadline: float) -> None:
    setup = backtest_setup(spec=spec_from_json(backtest.spec), mode=backtest.mode)
    window = {"setup": setup, "start": backtest.window_start, "end": backtest.window_end}
    total = events_count(**window)
    _update(backtest, events_total=total)
    replay, status = Replay(setup), Backtest.Status.DONE
    chunks = event_chunks(**window, size=settings.BACKTEST_CHUNK_SIZE, prepare=replay.prepare)
    for chunk in chunks:
        replay.run(chunk)
        _update(backtest, events_done=replay.events)
        if time.monotonic() > deadline and replay.events < total:
            status = Backtest.Status.TIMED_OUT
            break
    complete = status == Backtest.Status.DONE
    _finish(backtest, status, results=replay.results(total=total, complete=complete))


def _update(backtest: Backtest, **fields) -> None:
    for name, value in fields.items():
        setattr(backtest, name, value)
    Backtest.objects.filter(pk=backtest.pk).update(**fields)


def _finish(backtest: Backtest, status: str, **fields) -> None:
    _update(backtest, status=status, finished_at=timezone.now(), **fields)


def backtests_of_campaign(*, campaign: Campaign, limit: int = 20) -> list[Backtest]:
    return list(Backtest.objects.filter(campaign=campaign).select_related("created_by")[:limit])
