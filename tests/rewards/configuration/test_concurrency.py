"""Two applies against one plan: the second is refused, not a lost update. The configuration
lock never makes ingest wait."""

import threading

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ErrorCode
from partnerships.models import AuditEntry
from rewards.configuration.plan import Kind, Outcome
from rewards.configuration.state import configuration_lock
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import EndUserFactory, RewardFactory
from triggers.models import Trigger, TriggerEvent

from .support import apply, campaign, exported, held, plan


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_two_operators_applying_against_one_plan_apply_once(configured, operator):
    mine, theirs = exported(configured), exported(configured)
    campaign(mine, "welcome")["name"] = "Mine"
    campaign(theirs, "welcome")["name"] = "Theirs"
    fingerprint = plan(configured, mine).fingerprint
    barrier = threading.Barrier(2)
    applied, refused, errors = [], [], []

    def run(document) -> None:
        try:
            barrier.wait()
            applied.append(apply(configured, document, operator, expect=fingerprint))
        except ApplicationError as exc:
            refused.append(exc.code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(d,)) for d in (mine, theirs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(applied) == 1
    assert refused == [ErrorCode.CONFIGURATION_CHANGED]
    name = campaign(exported(configured), "welcome")["name"]
    assert name in ("Mine", "Theirs")


def _event(trigger: Trigger, user) -> TriggerEvent:
    now = timezone.now()
    return TriggerEvent.objects.create(
        partnership=trigger.partnership,
        trigger=trigger,
        end_user=user,
        occurred_at=now,
        received_at=now,
        deliver_at=now,
    )


def _insert_unwaiting(insert):
    """Runs ``insert`` in a transaction that may wait at most 2 s for a lock (else it fails)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
        return insert()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_an_apply_in_progress_does_not_hold_up_ingest(configured):
    trigger = Trigger.objects.get(partnership=configured, name="signup")
    user = EndUserFactory(partnership=configured)
    inserted = []
    with held(lambda: configuration_lock(partnership=configured)):
        inserted.append(_insert_unwaiting(lambda: _event(trigger, user)))

    assert len(inserted) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize(
    ("field", "value"),
    [("budget", "5000"), ("description", "Summer")],  # proposed; applied at once
)
def test_an_apply_that_changes_a_live_campaign_holds_up_neither_ingest_nor_rewards(
    configured, operator, field, value
):
    """The lifecycle locks a campaign row, never its partnership's (which every event insert
    references): an apply holds its locks until it commits."""
    trigger = Trigger.objects.get(partnership=configured, name="signup")
    user = EndUserFactory(partnership=configured)
    document = exported(configured)
    campaign(document, "cashback")[field] = value
    applying, release, inserted = threading.Event(), threading.Event(), []

    def hold(*args, **kwargs) -> None:
        applying.set()
        release.wait(10)

    def run() -> None:
        from django.db.models.signals import post_save

        from partnerships.models import AuditEntry

        post_save.connect(hold, sender=AuditEntry, dispatch_uid="hold")
        try:
            apply(configured, document, operator, force=True)
        finally:
            post_save.disconnect(dispatch_uid="hold", sender=AuditEntry)
            connection.close()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert applying.wait(10)
        inserted.append(_insert_unwaiting(lambda: _event(trigger, user)))
        cashback = Campaign.objects.get(slug="cashback")
        inserted.append(_insert_unwaiting(lambda: RewardFactory(campaign=cashback)))
    finally:
        release.set()
        runner.join()

    assert len(inserted) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_delivery_committed_during_an_apply_keeps_its_endpoint(configured, operator):
    """The plan said "deleted" (no deliveries); a delivery committed meanwhile is seen when the
    endpoint is removed (``webhook_endpoint_remove`` locks it FOR UPDATE): it is deactivated,
    and the delivery is not lost to the CASCADE."""
    document = exported(configured)
    document["webhooks"] = [w for w in document["webhooks"] if w["modes"] == "live"]
    document["triggers"].append({"name": "referral"})  # an earlier step to pause the apply at
    endpoint = WebhookEndpoint.objects.get(partnership=configured, modes="test")
    paused, resume, result = threading.Event(), threading.Event(), {}

    def pause(sender, instance, **kwargs) -> None:
        if instance.action == "trigger.create":
            paused.set()
            resume.wait(10)

    def run() -> None:
        post_save.connect(pause, sender=AuditEntry, dispatch_uid="pause-apply")
        try:
            result["applied"] = apply(configured, document, operator, force=True)
        finally:
            post_save.disconnect(sender=AuditEntry, dispatch_uid="pause-apply")
            connection.close()

    applier = threading.Thread(target=run)
    applier.start()
    try:
        assert paused.wait(10)
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_type="reward.issued",
            mode="test",
            payload={},
            next_attempt_at=timezone.now(),
            created_at=timezone.now(),
        )
    finally:
        resume.set()
        applier.join()

    assert WebhookDelivery.objects.filter(pk=delivery.pk).exists()
    endpoint.refresh_from_db()
    assert endpoint.active is False
    removed = [c for c in result["applied"].plan.changes if c.kind == Kind.WEBHOOK]
    assert [c.outcome for c in removed] == [Outcome.DEACTIVATED]
