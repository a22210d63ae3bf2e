import pytest

from campaigns.selectors import trigger_event_decisions
from rewards.services.evaluation import trigger_events_evaluate
from rewards.tasks import EVALUATION
from triggers.models import TriggerEvent
from triggers.services.processing import trigger_events_process_batch


def process_batch(limit: int = 500, processor=trigger_events_evaluate) -> int:
    """One step of the worker's pipeline (claim, evaluate, commit), with rewards' processor and
    listeners, as the worker's task passes them."""
    return trigger_events_process_batch(limit=limit, **{**EVALUATION, "processor": processor})


@pytest.fixture
def process(settings):
    """Runs the worker's pipeline until the queue is empty (failed attempts retried at once)."""
    settings.EVENT_RETRY_DELAY_SECONDS = 0

    def run(limit: int = 500, processor=trigger_events_evaluate) -> None:
        while process_batch(limit, processor):
            pass

    return run


def decisions(event: TriggerEvent) -> dict[str, str]:
    """{campaign slug: outcome}, as the status API and Pilot read them."""
    return {view.campaign: view.outcome for view in decision_views(event)}


def messages(event: TriggerEvent) -> dict[str, str]:
    """{campaign slug: message in words}."""
    return {view.campaign: view.message for view in decision_views(event)}


def decision_views(event: TriggerEvent) -> list:
    event.refresh_from_db()
    return trigger_event_decisions(event=event)
