"""Pilot's report pages through Django's test client: the numbers an operator reads for a known
set of rewards and reversals, the links behind them, the CSV, the permission and the scope."""

import csv
import html
import io
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from partnerships.models import PartnershipMember
from rewards.reports.maintain import reports_count_received
from rewards.reports.pilot_filters import local_today
from rewards.reports.pilot_tables import local_text
from tests.factories import ApiKeyFactory, CampaignFactory, TriggerEventFactory, TriggerFactory

from .pilot_reports_data import EXPECTED_CASHBACK, EXPECTED_TOTALS, build_scenario

pytestmark = pytest.mark.django_db

DASHBOARD = "/pilot/reports/"
DAILY_CSV = "/pilot/reports/daily.csv"


def campaign_page(campaign) -> str:
    return f"/pilot/reports/campaigns/{campaign.pk}/"


# --- Reading the page as an operator would ----------------------------------------------------

_FIGURE = re.compile(r'data-figure="([^"]+)"[^>]*>(.*?)</t[dh]>', re.S)
_FIGURE_LINK = re.compile(r'data-figure="([^"]+)"[^>]*>\s*<a[^>]*href="([^"]+)"', re.S)


def figures(response) -> dict[str, str]:
    """{figure name: the text shown}, e.g. {"total:Points:issued_count": "5"}."""
    page = response.content.decode()
    return {
        name: html.unescape(re.sub(r"<[^>]+>|\s+", " ", text)).strip()
        for name, text in _FIGURE.findall(page)
    }


def figure_links(response) -> dict[str, str]:
    page = response.content.decode()
    return {name: html.unescape(href) for name, href in _FIGURE_LINK.findall(page)}


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def totals_of(shown: dict[str, str], prefix: str = "total") -> dict[str, str]:
    return {
        name: shown.get(f"{prefix}:Points:{name}", shown.get(f"{prefix}:{name}"))
        for name in EXPECTED_TOTALS
    }


@pytest.fixture
def scenario(partnership, trigger, partner_client):
    return build_scenario(partnership=partnership, trigger=trigger, partner_client=partner_client)


@pytest.fixture
def reporter(client, django_user_model):
    """A Pilot user with the report permission, member of no partnership yet."""
    user = django_user_model.objects.create_user("reporter", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client.force_login(user)
    client.user = user
    return client


# --- The numbers ------------------------------------------------------------------------------


def test_the_dashboard_shows_the_partnerships_totals(admin_client, scenario):
    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk})

    assert response.status_code == 200
    shown = figures(response)
    assert totals_of(shown) == EXPECTED_TOTALS
    page = text(response)
    assert "Live mode" in page
    assert "events received counted up to" in page
    assert "Europe/Paris" in page


def test_the_dashboard_shows_decisions_by_outcome_in_words(admin_client, scenario):
    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk})

    shown = figures(response)
    assert shown["outcome:rewarded"] == "5"
    assert shown["outcome:condition_false"] == "5"
    assert shown["outcome:budget_exhausted"] == "0"
    assert "Condition not met" in text(response)


def test_the_daily_row_of_today_holds_the_days_figures(admin_client, scenario):
    today = local_today(scenario.partnership).isoformat()

    shown = figures(admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk}))

    assert shown[f"day:{today}:Points:issued_count"] == "5"
    assert shown[f"day:{today}:Points:issued_amount"] == "45.00"
    assert shown[f"day:{today}:Points:reversed_amount"] == "14.00"
    assert shown[f"day:{today}:Points:net_amount"] == "31.00"
    assert shown[f"day:{today}:Points:conversion"] == "80.0%"
    yesterday = (local_today(scenario.partnership) - timedelta(days=1)).isoformat()
    assert shown[f"day:{yesterday}:Points:issued_count"] == "0"


def test_the_campaign_page_shows_budget_top_users_and_reversals(admin_client, scenario):
    response = admin_client.get(campaign_page(scenario.cashback))

    assert response.status_code == 200
    shown = figures(response)
    for name in ("issued_count", "issued_amount", "reversed_count", "reversed_amount"):
        assert shown[f"total:Points:{name}"] == EXPECTED_CASHBACK[name], name
    assert shown["budget:budget"] == "100.00"
    assert shown["budget:spent"] == "26.00"
    assert shown["budget:left"] == "74.00"
    assert shown["outcome:rewarded"] == "4"
    assert shown["outcome:condition_false"] == "1"
    assert [
        (shown[f"top:{n}:user"], shown[f"top:{n}:rewards"], shown[f"top:{n}:amount"])
        for n in range(3)
    ] == [("alice", "2", "20.00"), ("bob", "1", "10.00"), ("carol", "1", "10.00")]
    assert [(shown[f"reversal:{n}:user"], shown[f"reversal:{n}:amount"]) for n in range(2)] == [
        ("alice", "4.00"),
        ("bob", "10.00"),
    ]
    assert "partial refund" in text(response)
    assert 'data-chart="burn-down"' in response.content.decode()


def test_test_mode_shows_only_test_rewards(admin_client, scenario):
    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk, "mode": "test"})

    shown = figures(response)
    assert shown["total:Points:issued_count"] == "1"
    assert shown["total:Points:issued_amount"] == "10.00"
    assert "Test mode" in text(response)


def test_a_range_without_rewards_shows_zeros(admin_client, scenario):
    past = local_today(scenario.partnership) - timedelta(days=40)

    response = admin_client.get(
        DASHBOARD,
        {"partnership": scenario.partnership.pk, "from": past, "to": past + timedelta(days=5)},
    )

    assert figures(response)["total:Points:issued_count"] == "0"


# --- Links to the rows behind the numbers -----------------------------------------------------


def test_a_days_issued_count_links_to_that_local_days_rewards(admin_client, scenario):
    today = local_today(scenario.partnership)
    response = admin_client.get(campaign_page(scenario.cashback))
    link = figure_links(response)[f"day:{today.isoformat()}:Points:issued_count"]

    query = parse_qs(urlsplit(link).query)
    rewards = admin_client.get(link)

    offset = timezone.now().astimezone(scenario.partnership.zone).strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}"
    assert query["issued_at__gte"] == [f"{today.isoformat()}T00:00:00{offset}"]
    assert query["issued_at__lt"][0].startswith(f"{(today + timedelta(days=1)).isoformat()}T00")
    assert query["campaign__id__exact"] == [str(scenario.cashback.pk)]
    assert query["mode__exact"] == ["live"]
    assert rewards.status_code == 200
    assert rewards.context["cl"].result_count == 4  # cashback's live rewards, not big's or test's


def test_a_reversed_count_links_to_the_reversals(admin_client, scenario):
    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk})
    link = figure_links(response)["total:Points:reversed_count"]

    adjustments = admin_client.get(link)

    assert adjustments.status_code == 200
    assert adjustments.context["cl"].result_count == 2


def test_events_evaluated_links_to_the_events(admin_client, scenario):
    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk})
    link = figure_links(response)["total:events_evaluated"]

    events = admin_client.get(link)

    assert events.status_code == 200
    assert events.context["cl"].result_count == 5


# --- The CSV ----------------------------------------------------------------------------------


def test_the_daily_csv_is_the_pages_table(admin_client, scenario):
    query = {"partnership": scenario.partnership.pk, "campaign": scenario.cashback.pk}
    page = admin_client.get(DASHBOARD, query)
    shown = figures(page)

    response = admin_client.get(DAILY_CSV, query)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header, body = rows[0], rows[1:]
    assert header[:7] == [
        "Day",
        "Unit",
        "Issued",
        "Issued amount",
        "Reversed",
        "Reversed amount",
        "Net amount",
    ]
    assert len(body) == 30
    keys = ["day", "unit", "issued_count", "issued_amount", "reversed_count"]
    keys += ["reversed_amount", "net_amount", "events_received", "events_evaluated"]
    keys += ["events_rewarded", "conversion"]
    for row in body:
        assert row == [shown[f"day:{row[0]}:{row[1]}:{key}"] for key in keys[: len(row)]]
    today = local_today(scenario.partnership).isoformat()
    (today_row,) = (row for row in body if row[0] == today)
    assert today_row[2:7] == ["4", "40.00", "2", "14.00", "26.00"]
    assert sum(Decimal(row[6]) for row in body) == Decimal("26.00")


def test_the_page_links_its_csv_with_its_filters(admin_client, scenario):
    query = {"partnership": str(scenario.partnership.pk), "mode": "test"}
    page = admin_client.get(DASHBOARD, query).content.decode()

    (href,) = re.findall(r'href="([^"]*daily\.csv[^"]*)"', page)

    sent = parse_qs(urlsplit(html.unescape(href)).query)
    assert sent["partnership"] == [query["partnership"]]
    assert sent["mode"] == ["test"]


# --- Filters in the URL -----------------------------------------------------------------------


def test_filters_round_trip_through_the_url(admin_client, scenario):
    first = local_today(scenario.partnership) - timedelta(days=6)
    query = {
        "partnership": str(scenario.partnership.pk),
        "mode": "live",
        "from": first.isoformat(),
        "to": local_today(scenario.partnership).isoformat(),
        "campaign": str(scenario.cashback.pk),
        "trigger": scenario.cashback.trigger.name,
    }

    response = admin_client.get(f"{DASHBOARD}?{urlencode(query)}")

    assert response.status_code == 200
    form = response.context["form"]
    assert {name: form.data[name] for name in query} == query
    page = response.content.decode()
    assert f'value="{first.isoformat()}"' in page
    assert re.search(rf'<option value="{scenario.cashback.pk}"[^>]*selected', page)
    assert figures(response)["total:Points:issued_count"] == "4"
    shared = parse_qs(response.context["csv_query"])
    assert {name: values[0] for name, values in shared.items()} == query


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "yesterday"}, "Enter a valid date."),
        ({"to": "2026-02-30"}, "Enter a valid date."),
        ({"mode": "production"}, "Select a valid choice."),
        ({"campaign": "not-a-uuid"}, "“not-a-uuid” is not a valid UUID."),
        ({"trigger": "x"}, "That trigger is not in this partnership."),
        ({"partnership": "1"}, "“1” is not a valid UUID."),
        (
            {"partnership": "6f1c4b7e-1d2a-4c1e-9a51-0f5b7d1c2a3b"},
            "You cannot see that partnership",
        ),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "The range ends before it starts"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "A report covers at most 366 days"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "Choose a day from 2000-01-01 to 2099-12-31."),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "Choose a day from 2000-01-01 to 2099-12-31."),
    ],
)
def test_a_bad_filter_shows_a_message_not_a_500(admin_client, scenario, query, message):
    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk, **query})
    csv_response = admin_client.get(DAILY_CSV, {"partnership": scenario.partnership.pk, **query})

    assert response.status_code == 400
    assert csv_response.status_code == 400
    assert message in text(response)
    assert message in csv_response.content.decode()
    assert 'data-figure="total:' not in response.content.decode()


def test_a_campaign_of_another_partnership_is_refused_in_the_filter(admin_client, scenario):
    other = CampaignFactory(trigger=TriggerFactory())

    response = admin_client.get(
        DASHBOARD, {"partnership": scenario.partnership.pk, "campaign": other.pk}
    )

    assert response.status_code == 400
    assert "That campaign is not in this partnership." in text(response)


# --- Budget warnings --------------------------------------------------------------------------


def test_low_on_budget_and_ending_soon_are_listed(admin_client, partnership, trigger, process):
    CampaignFactory(trigger=trigger, name="Nearly spent", budget=Decimal("10.5"))
    CampaignFactory(trigger=trigger, name="Closing", ends_at=timezone.now() + timedelta(days=3))
    CampaignFactory(trigger=trigger, name="Far away", ends_at=timezone.now() + timedelta(days=60))
    TriggerEventFactory(trigger=trigger)
    process()

    page = admin_client.get(DASHBOARD, {"partnership": partnership.pk}).content.decode()

    low = page.split('id="low-on-budget"')[1].split("</section>")[0]
    ending = page.split('id="ending-soon"')[1].split("</section>")[0]
    assert "Nearly spent" in low and "Closing" not in low
    assert "Closing" in ending and "Far away" not in ending


# --- Permission and scope ---------------------------------------------------------------------


@pytest.fixture
def no_report_permission(client, django_user_model):
    """Staff who may view every model, but not reports."""
    user = django_user_model.objects.create_user("clerk", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__startswith="view_").exclude(codename="view_reports")
    )
    client.force_login(user)
    return client


def test_without_the_report_permission_every_page_and_export_is_403(no_report_permission, scenario):
    for url in (DASHBOARD, campaign_page(scenario.cashback), DAILY_CSV):
        response = no_report_permission.get(url, {"partnership": scenario.partnership.pk})

        assert response.status_code == 403, url
        assert b"permission to view reports" in response.content


def test_a_user_not_signed_in_is_sent_to_the_login(client, scenario):
    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith("/pilot/login/")


def test_a_member_of_a_sees_a_and_not_b(reporter, scenario):
    other_key = ApiKeyFactory()
    b = other_key.partnership
    b_campaign = CampaignFactory(trigger=TriggerFactory(partnership=b))
    PartnershipMember.objects.create(user=reporter.user, partnership=scenario.partnership)

    page = reporter.get(DASHBOARD)
    by_url = reporter.get(DASHBOARD, {"partnership": b.pk})
    campaign = reporter.get(campaign_page(b_campaign))
    exported = reporter.get(DAILY_CSV, {"partnership": b.pk})

    assert page.status_code == 200
    choices = [str(p.pk) for p in page.context["form"].fields["partnership"].queryset]
    assert choices == [str(scenario.partnership.pk)]
    assert str(b.pk) not in page.content.decode()
    assert totals_of(figures(page)) == EXPECTED_TOTALS  # their one partnership, by default
    assert by_url.status_code == 400
    assert "You cannot see that partnership" in text(by_url)
    assert campaign.status_code == 404
    assert exported.status_code == 400


def test_a_user_of_no_partnership_is_told_so(reporter, scenario):
    response = reporter.get(DASHBOARD)

    assert response.status_code == 200
    assert "not a member of any partnership" in text(response)
    assert 'data-figure="total:' not in response.content.decode()


# --- Look: unfold, local assets ---------------------------------------------------------------


def test_pilot_pages_load_no_asset_from_another_host(admin_client, scenario):
    pages = [
        admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk}),
        admin_client.get(campaign_page(scenario.cashback)),
        admin_client.get("/pilot/"),
        admin_client.get("/pilot/rewards/reward/"),
    ]

    for page in pages:
        assert page.status_code == 200
        sources = re.findall(
            r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', page.content.decode()
        )
        assert sources
        assert [s for s in sources if not s.startswith("/")] == []


def test_chart_js_is_served_from_our_static_files(admin_client, scenario):
    page = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk}).content.decode()
    (chart_js,) = [s for s in re.findall(r'<script[^>]+src="([^"]+)"', page) if "chart" in s]

    response = admin_client.get(chart_js)

    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"Chart" in body and len(body) > 50_000


def test_the_sidebar_offers_reports_only_to_those_who_may_see_them(
    admin_client, no_report_permission
):
    offered = admin_client.get("/pilot/").content.decode()
    hidden = no_report_permission.get("/pilot/").content.decode()

    assert f'href="{DASHBOARD}"' in offered
    assert f'href="{DASHBOARD}"' not in hidden
    assert 'href="/pilot/rewards/reward/"' in hidden  # the pages they may open stay


def test_a_pilot_users_page_shows_the_partnerships_they_see(
    admin_client, django_user_model, partnership
):
    user = django_user_model.objects.create_user("ops", is_staff=True)
    PartnershipMember.objects.create(user=user, partnership=partnership)

    page = admin_client.get(f"/pilot/auth/user/{user.pk}/change/")

    assert page.status_code == 200
    assert "Partnerships this user sees in Pilot" in text(page)
    assert str(partnership) in text(page)


def test_the_campaign_page_refuses_bad_filters_with_a_message(admin_client, scenario):
    response = admin_client.get(campaign_page(scenario.cashback), {"from": "tomorrow"})

    assert response.status_code == 400
    assert "Enter a valid date." in text(response)


def test_a_campaign_range_long_past_has_no_burn_down_but_its_figures(admin_client, scenario):
    response = admin_client.get(
        campaign_page(scenario.cashback), {"from": "2024-01-01", "to": "2024-01-31"}
    )

    assert response.status_code == 200
    assert figures(response)["total:Points:issued_count"] == "0"
    assert "No burn-down" in text(response)


def test_events_received_are_shown_with_the_moment_they_are_counted_up_to(
    admin_client, scenario, settings
):
    settings.REPORTS_RECEIVED_SETTLE_SECONDS = 0
    through = reports_count_received()

    response = admin_client.get(DASHBOARD, {"partnership": scenario.partnership.pk})

    assert figures(response)["total:events_received"] == "5"  # the live ones
    shown = local_text(through, scenario.partnership.zone)
    assert f"events received counted up to {shown}" in text(response)
    assert shown.endswith(("CET", "CEST"))
