"""A campaign's life: it ends by itself once no event can reach it, and concurrent saves
never collide on its version."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, CampaignVersion
from campaigns.services import campaign_save
from campaigns.tasks import end_expired_campaigns
from tests.factories import CampaignFactory, TriggerEventFactory


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def campaign_that_ended(trigger, days: float, **fields) -> Campaign:
    """A campaign saved while it ran, its end now ``days`` ago."""
    campaign = CampaignFactory(trigger=trigger, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(ends_at=days_ago(days))
    return campaign


@pytest.mark.django_db
def test_campaigns_no_event_can_reach_any_more_end_by_themselves(trigger):
    trigger.partnership.max_event_lateness_days = 7
    trigger.partnership.save()
    reach = 7 + settings.EVENT_MAX_DELAY_DAYS  # lateness, then a delayed delivery
    gone = campaign_that_ended(trigger, reach + 1)
    paused = campaign_that_ended(trigger, reach + 1, status="paused")
    still_reachable = campaign_that_ended(trigger, reach - 1)
    open_ended = CampaignFactory(trigger=trigger)
    draft = campaign_that_ended(trigger, reach + 1, status="draft")

    end_expired_campaigns()

    statuses = dict(Campaign.objects.values_list("id", "status"))
    assert statuses == {
        gone.id: "ended",
        paused.id: "ended",
        still_reachable.id: "active",
        open_ended.id: "active",
        draft.id: "draft",
    }


@pytest.mark.django_db
def test_a_campaign_stays_open_while_an_event_from_before_its_end_still_waits(trigger):
    trigger.partnership.max_event_lateness_days = 7
    trigger.partnership.save()
    campaign = campaign_that_ended(trigger, 7 + settings.EVENT_MAX_DELAY_DAYS + 1)
    # Accepted in time, delayed, and now due while the workers are behind.
    waiting = TriggerEventFactory(trigger=trigger, occurred_at=days_ago(40), status="queued")

    end_expired_campaigns()

    campaign.refresh_from_db()
    assert campaign.status == "active"
    TriggerEventFactory(trigger=trigger, occurred_at=days_ago(1), status="queued")  # too late
    waiting.status = "processed"
    waiting.save()

    end_expired_campaigns()

    campaign.refresh_from_db()
    assert campaign.status == "ended"


@pytest.mark.django_db
def test_without_a_lateness_bound_campaigns_end_after_the_grace_setting(trigger, settings):
    settings.CAMPAIGN_END_GRACE_DAYS = 2
    trigger.partnership.max_event_lateness_days = None
    trigger.partnership.save()
    reach = 2 + settings.EVENT_MAX_DELAY_DAYS
    gone = campaign_that_ended(trigger, reach + 0.5)
    kept = campaign_that_ended(trigger, reach - 0.5)

    end_expired_campaigns()

    assert Campaign.objects.get(pk=gone.pk).status == "ended"
    assert Campaign.objects.get(pk=kept.pk).status == "active"


def test_beat_runs_the_end_of_campaigns():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "campaigns.tasks.end_expired_campaigns" in tasks


@pytest.mark.django_db
def test_a_campaign_no_event_can_reach_cannot_be_made_active_again(trigger):
    campaign = CampaignFactory(trigger=trigger, status="ended", ends_at=days_ago(400))
    campaign.status = "active"

    with pytest.raises(ValidationError) as raised:
        campaign_save(campaign=campaign)

    assert "Move its end date to reopen it" in raised.value.message_dict["status"][0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_saving_one_campaign_at_once_from_many_places_gives_consecutive_versions(trigger):
    campaign = CampaignFactory(trigger=trigger)
    count = 6
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def save(index: int) -> None:
        try:
            copy = Campaign.objects.get(pk=campaign.pk)  # each its own form, as in Pilot
            copy.description = f"edit {index}"
            barrier.wait()
            campaign_save(campaign=copy)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    versions = sorted(
        CampaignVersion.objects.filter(campaign=campaign).values_list("version", flat=True)
    )
    assert versions == list(range(1, count + 2))
    assert Campaign.objects.get(pk=campaign.pk).version == count + 1
