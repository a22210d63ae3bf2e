import pytest

from campaigns.selectors import trigger_event_decisions
from triggers.models import TriggerEvent
from triggers.services.processing import trigger_events_process_batch


@pytest.fixture
def process():
    """Runs the worker's pipeline (claim, evaluate, commit) until the queue is empty."""

    def run(limit: int = 500) -> None:
        while trigger_events_process_batch(limit=limit):
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
