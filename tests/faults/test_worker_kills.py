"""Workers SIGKILLed again and again while they evaluate a budgeted campaign (real Celery
workers: their pool processes killed, then the whole worker), against the same events
evaluated without a fault."""

import contextlib
import os
import signal
from decimal import Decimal

import pytest
from django.db.models import Count

from rewards.models import Reward
from tests.factories import EndUserFactory
from tests.rewards.test_concurrency import bulk_events
from tests.support import celery_beat, celery_worker, wait_until
from triggers.models import TriggerEventClaim

from .support import Partner, children, ledger_check, settled, stack_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]
EVENTS, USERS = 2000, 100
POOL_KILLS = 3


def _world() -> tuple[Partner, list]:
    """A partner with a binding budget (400 of the events) and a per-user cap (3 x 100), and
    its users, the same external ids in every world."""
    partner = Partner()
    partner.campaign("budgeted", reward_value=Decimal("5"), budget=Decimal("2000"))
    partner.campaign("capped", reward_value=Decimal("1"), max_rewards_per_user=3)
    users = [
        EndUserFactory(partnership=partner.partnership, external_user_id=f"user-{n}")
        for n in range(USERS)
    ]
    return partner, users


class Batches:
    """Claimed batches, seen by their claim records (committed before a batch is evaluated,
    deleted with its outcomes)."""

    def __init__(self) -> None:
        self.seen = 0

    def new_one_running(self) -> bool:
        """A batch claimed since the last call that found one is being evaluated now."""
        claim = TriggerEventClaim.objects.filter(pk__gt=self.seen).order_by("-pk").first()
        if claim is None:
            return False
        self.seen = claim.pk
        return True


def _per_user(partner: Partner, slug: str) -> dict[str, int]:
    rewards = Reward.objects.filter(partnership=partner.partnership, campaign__slug=slug)
    return dict(rewards.values_list("end_user__external_user_id").annotate(n=Count("id")))


def test_workers_killed_again_and_again_pay_what_a_fault_free_run_pays_within_the_budget(
    private_db, broker, tmp_path
):
    (calm, calm_users), (faulted, faulted_users) = _world(), _world()
    # The kills are the test's, not the events' fault: none may run out of attempts.
    env = stack_env(private_db.url, broker, EVENT_BATCH_SIZE="50", EVENT_MAX_ATTEMPTS="10")

    with contextlib.ExitStack() as stack:
        stack.enter_context(celery_beat(env, tmp_path / "beat.log"))
        worker = stack.enter_context(
            celery_worker(env, tmp_path / "worker-1.log", concurrency=2, queues="celery")
        )
        bulk_events(calm.trigger, EVENTS, users=calm_users)
        wait_until(settled(calm, EVENTS), 90, "the fault-free run evaluated (see worker-1.log)")

        batches = Batches()  # the fault-free run's claim records are gone with its batches
        bulk_events(faulted.trigger, EVENTS, users=faulted_users)
        for _ in range(POOL_KILLS):  # the pool's processes die; the worker starts new ones
            wait_until(batches.new_one_running, 30, "a batch evaluated (see worker-1.log)")
            for pid in children(worker.pid):
                with contextlib.suppress(ProcessLookupError):  # gone since it was listed
                    os.kill(pid, signal.SIGKILL)
        wait_until(batches.new_one_running, 30, "a batch evaluated (see worker-1.log)")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker: a new one takes over
        worker.wait(timeout=10)
        stack.enter_context(
            celery_worker(env, tmp_path / "worker-2.log", concurrency=2, queues="celery")
        )
        wait_until(settled(faulted, EVENTS), 90, "every event evaluated (see worker-2.log)")

    assert faulted.events().filter(attempts__gt=1).exists()  # the kills cut batches short
    assert faulted.events().filter(status="processed").count() == EVENTS
    expected = ledger_check(calm)
    assert expected == {"budgeted": (400, Decimal("2000")), "capped": (300, Decimal("300"))}
    assert ledger_check(faulted) == expected
    assert _per_user(faulted, "capped") == _per_user(calm, "capped")
