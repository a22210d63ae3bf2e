"""Pilot's backtest pages: the button on the campaign, the form (edits not saved, errors at
their field), the run's page with its figures and progress, permissions and scope."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from partnerships.models import PartnershipMember
from rewards.simulation.backtests import backtest_execute, backtest_start
from rewards.simulation.models import Backtest
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory, TriggerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(trigger):
    return CampaignFactory(
        trigger=trigger,
        status=Campaign.Status.DRAFT,
        name="Spring draft",
        condition="context.amount >= 20.0",
        reward_value=Decimal("10"),
    )


@pytest.fixture
def operator(client, django_user_model, trigger):
    """A member of the trigger's partnership who may view and change campaigns (starting a
    backtest needs the change permission)."""
    user = django_user_model.objects.create_user("ops", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=("view_campaign", "change_campaign"))
    )
    PartnershipMember.objects.create(user=user, partnership=trigger.partnership)
    client.force_login(user)
    return client


def page_url(campaign) -> str:
    return reverse("admin:campaigns_campaign_backtest", args=[campaign.pk])


def form_data(campaign, **changes) -> dict:
    data = {
        "days": 7,
        "mode": "live",
        "priority": campaign.priority,
        "condition": campaign.condition,
        "facts": "[]",
        "reward_type": campaign.reward_type,
        "reward_value": campaign.reward_value,
        "rounding": campaign.rounding,
    }
    return {**data, **changes}


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{re.escape(name)}"[^>]*>([^<]*)<', html)
    assert match, f"no figure {name}"
    return match.group(1).strip()


def test_the_campaign_page_has_a_backtest_button_and_its_past_backtests(operator, draft):
    backtest_start(campaign=draft, days=3, mode="live")

    html = operator.get(reverse("admin:campaigns_campaign_change", args=[draft.pk])).content
    html = html.decode()

    assert page_url(draft) in html  # the button
    assert (
        reverse("admin:campaigns_campaign_backtest_result", args=[Backtest.objects.get().pk])
        in html
    )


def test_an_edited_copy_is_backtested_and_the_campaign_is_not_saved(
    operator, draft, django_capture_on_commit_callbacks
):
    user = EndUserFactory(partnership=draft.partnership)
    TriggerEventFactory(trigger=draft.trigger, end_user=user, context={"amount": 30})
    TriggerEventFactory(trigger=draft.trigger, end_user=user, context={"amount": 5})

    with django_capture_on_commit_callbacks() as queued:
        response = operator.post(page_url(draft), form_data(draft, reward_value="7.5", days=3))

    run = Backtest.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:campaigns_campaign_backtest_result", args=[run.pk])
    assert len(queued) == 1  # the Celery task, sent once the row is committed
    assert (run.days, run.mode, run.status) == (3, "live", "queued")
    draft.refresh_from_db()
    assert draft.reward_value == Decimal("10")  # the edit was not saved

    backtest_execute(backtest_id=run.pk)
    html = operator.get(response.url).content.decode()

    assert figure(html, "status") == "Done"
    assert figure(html, "events") == "2"
    assert figure(html, "rewards") == "1"
    assert figure(html, "amount") == "7.50 Points"
    assert figure(html, "users") == "1"
    assert figure(html, "budget_exhausted_on") == "Not within the window"
    assert figure(html, "outcome:condition_false") == "1"
    assert figure(html, "bite:budget_exhausted") == "0"
    assert "Counters start at zero" in html
    listed = operator.get(page_url(draft)).content.decode()
    assert str(run.pk) in listed and "7.50 Points" in listed


def test_a_rule_that_does_not_compile_is_shown_at_its_field_and_nothing_runs(operator, draft):
    response = operator.post(page_url(draft), form_data(draft, condition="context.amount >= 20"))

    html = response.content.decode()
    assert response.status_code == 400
    error = re.search(r'data-error="condition"[^>]*>([^<]*)<', html).group(1)
    assert "line 1, column" in error and "doubles" in error
    assert not Backtest.objects.exists()


def test_a_window_longer_than_allowed_is_refused_with_the_limit(operator, draft, settings):
    settings.BACKTEST_MAX_DAYS = 30

    response = operator.post(page_url(draft), form_data(draft, days=31))

    assert response.status_code == 400
    assert "At most 30 days." in response.content.decode()
    assert not Backtest.objects.exists()


def test_the_status_view_gives_the_progress_the_bar_shows(operator, draft):
    run = backtest_start(campaign=draft, days=3, mode="live")
    Backtest.objects.filter(pk=run.pk).update(status="running", events_done=30, events_total=120)
    url = reverse("admin:campaigns_campaign_backtest_status", args=[run.pk])

    status = operator.get(url).json()
    html = operator.get(reverse("admin:campaigns_campaign_backtest_result", args=[run.pk]))

    assert status == {
        "status": "running",
        "finished": False,
        "events_done": 30,
        "events_total": 120,
        "percent": 25,
    }
    assert 'aria-valuenow="25"' in html.content.decode()
    assert url in html.content.decode()  # polled by the page


def test_partial_results_are_marked_on_the_page(operator, draft, settings):
    settings.BACKTEST_MAX_SECONDS = 0
    settings.BACKTEST_CHUNK_SIZE = 1
    user = EndUserFactory(partnership=draft.partnership)
    TriggerEventFactory.create_batch(3, trigger=draft.trigger, end_user=user)
    run = backtest_start(campaign=draft, days=1, mode="live")
    backtest_execute(backtest_id=run.pk)

    html = operator.get(reverse("admin:campaigns_campaign_backtest_result", args=[run.pk]))

    text = html.content.decode()
    assert figure(text, "status") == "Timed out (partial results)"
    assert "Partial results: the backtest stopped at its time limit after 1 of 3 events" in text


def test_an_operator_of_another_partnership_sees_none_of_it_even_by_url(
    client, django_user_model, draft
):
    run = backtest_start(campaign=draft, days=3, mode="live")
    stranger = django_user_model.objects.create_user("other", is_staff=True)
    stranger.user_permissions.set(Permission.objects.filter(codename="view_campaign"))
    PartnershipMember.objects.create(user=stranger, partnership=TriggerFactory().partnership)
    client.force_login(stranger)

    urls = [
        page_url(draft),
        reverse("admin:campaigns_campaign_backtest_result", args=[run.pk]),
        reverse("admin:campaigns_campaign_backtest_status", args=[run.pk]),
    ]

    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    assert client.post(urls[0], form_data(draft)).status_code == 404
    assert Backtest.objects.count() == 1


def test_without_the_campaign_view_permission_every_page_is_refused(
    client, django_user_model, draft
):
    run = backtest_start(campaign=draft, days=3, mode="live")
    user = django_user_model.objects.create_user("nobody", is_staff=True)
    PartnershipMember.objects.create(user=user, partnership=draft.partnership)
    client.force_login(user)

    urls = [
        page_url(draft),
        reverse("admin:campaigns_campaign_backtest_result", args=[run.pk]),
        reverse("admin:campaigns_campaign_backtest_status", args=[run.pk]),
    ]

    assert [client.get(url).status_code for url in urls] == [403, 403, 403]


def test_runs_older_than_the_window_are_still_listed_with_their_figures(operator, draft):
    run = backtest_start(campaign=draft, days=3, mode="test")
    Backtest.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(days=40),
        status="done",
        results={"unit": "Points", "campaign": {"rewards": 12, "amount": "120.00"}},
    )

    html = operator.get(page_url(draft)).content.decode()

    row = re.search(rf'data-backtest="{run.pk}".*?</tr>', html, re.S).group(0)
    assert "12" in row and "120.00 Points" in row and "test" in row


def test_who_may_only_view_campaigns_sees_past_backtests_and_starts_none(
    client, django_user_model, draft
):
    run = backtest_start(campaign=draft, days=3, mode="live")
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_campaign"))
    PartnershipMember.objects.create(user=viewer, partnership=draft.partnership)
    client.force_login(viewer)

    page = client.get(page_url(draft)).content.decode()
    posted = client.post(page_url(draft), form_data(draft))

    assert "Starting a backtest needs the permission “campaigns.change_campaign”" in page
    assert 'id="backtest-form"' not in page and str(run.pk) in page
    assert posted.status_code == 403
    assert list(Backtest.objects.values_list("pk", flat=True)) == [run.pk]
