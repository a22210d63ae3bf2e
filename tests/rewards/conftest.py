import pytest

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
    event.refresh_from_db()
    return {decision["campaign"]: decision["outcome"] for decision in event.decisions}
