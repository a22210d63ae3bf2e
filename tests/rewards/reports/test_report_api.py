"""The partner reports API: figures of rewards issued by the worker and reversed by partners."""

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from config.errors import ErrorCode
from rewards.models import Reward, RewardAdjustment
from rewards.reports.maintain import reports_count_received
from rewards.reports.selectors import MAX_REPORT_DAYS
from tests.factories import CampaignFactory, TriggerEventFactory, TriggerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def today(partnership):
    return timezone.now().astimezone(partnership.zone).date()


@pytest.fixture
def shop(trigger, process, partner_client, partnership):
    """Three purchases rewarded 10 (cashback) and 2.50 (bonus) each; one is refunded 4.00."""
    cashback = CampaignFactory(trigger=trigger, slug="cashback", reward_value=Decimal("10"))
    bonus = CampaignFactory(trigger=trigger, slug="bonus", reward_value=Decimal("2.5"))
    events = [TriggerEventFactory(trigger=trigger) for _ in range(3)]
    process()
    refund = partner_client.post(
        f"/partnerships/{partnership.id}/triggers/reverse",
        {"trigger_event_id": str(events[0].id), "amount": "4.00"},
        format="json",
    )
    assert refund.status_code == 200, refund.content
    return {"cashback": cashback, "bonus": bonus, "events": events}


def report(client, partnership, **params):
    return client.get(f"/partnerships/{partnership.id}/reports/rewards", params)


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()["data"]


def refused(response, status: int, code: ErrorCode) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    return body


MONEY = {
    "unit": "Points",
    "issued_count": 6,
    "issued_amount": "37.50",
    "reversed_count": 2,  # the refund's part of each of the event's two rewards
    "reversed_amount": "4.00",
    "net_amount": "33.50",
}


def test_a_day_shows_what_was_issued_and_reversed(
    partner_client, partnership, shop, today, settings
):
    settle = timedelta(seconds=settings.REPORTS_RECEIVED_SETTLE_SECONDS + 1)
    counted = reports_count_received(now=timezone.now() + settle)  # the beat job, later

    data = ok(
        report(partner_client, partnership, **{"from": today, "to": today, "unique_users": "true"})
    )

    assert data["mode"] == "live"
    assert (data["from"], data["to"]) == (str(today), str(today))
    assert data["time_zone"] == partnership.time_zone
    assert datetime.fromisoformat(data["received_through"]) == counted
    assert data["totals"]["money"] == [MONEY]
    assert data["totals"]["unique_users"] == 3
    assert data["totals"]["decisions"] == {"rewarded": 6}
    events = data["totals"]["events"]
    assert (events["events_received"], events["events_failed"]) == (3, 0)
    assert (events["events_evaluated"], events["events_rewarded"]) == (3, 3)
    assert events["conversion"] == "1.0000"
    assert [day["day"] for day in data["days"]] == [str(today)]
    assert data["days"][0]["money"] == [MONEY]
    assert data["campaigns"] is None


def test_days_of_the_range_without_activity_are_zeros(partner_client, partnership, shop, today):
    data = ok(
        report(partner_client, partnership, **{"from": today - timedelta(days=2), "to": today})
    )

    assert len(data["days"]) == 3
    assert data["days"][0]["money"][0]["issued_amount"] == "0.00"
    assert data["days"][0]["money"][0]["issued_count"] == 0
    assert data["days"][2]["money"] == [MONEY]


def test_by_campaign(partner_client, partnership, shop, today):
    data = ok(
        report(partner_client, partnership, **{"from": today, "to": today, "group_by": "campaign"})
    )

    by_slug = {row["campaign"]: row for row in data["campaigns"]}
    assert by_slug["cashback"]["money"][0]["issued_amount"] == "30.00"
    assert by_slug["bonus"]["money"][0]["issued_amount"] == "7.50"
    # The 4.00 refund is split in proportion: 10/12.5 and 2.5/12.5 of it.
    assert by_slug["cashback"]["money"][0]["reversed_amount"] == "3.20"
    assert by_slug["bonus"]["money"][0]["reversed_amount"] == "0.80"
    assert by_slug["bonus"]["decisions"] == {"rewarded": 3}
    assert data["days"] is None


def test_a_campaign_filter_by_slug_or_id(partner_client, partnership, shop, today):
    by_slug = ok(
        report(partner_client, partnership, **{"from": today, "to": today, "campaign": "bonus"})
    )
    by_id = ok(
        report(
            partner_client,
            partnership,
            **{"from": today, "to": today, "campaign": str(shop["bonus"].id)},
        )
    )

    assert by_slug["totals"]["money"][0]["issued_amount"] == "7.50"
    assert by_id["totals"] == by_slug["totals"]
    assert by_slug["campaign"] == "bonus"


def test_csv_has_the_json_figures(partner_client, partnership, shop, today):
    params = {"from": today - timedelta(days=1), "to": today}
    data = ok(report(partner_client, partnership, **params))

    response = report(partner_client, partnership, **params, format="csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["X-Report-Mode"] == "live"
    assert response["X-Report-Time-Zone"] == partnership.time_zone
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["day"] for row in rows] == [day["day"] for day in data["days"]]
    assert {k: rows[1][k] for k in MONEY} == {k: str(v) for k, v in MONEY.items()}
    assert rows[1]["events_evaluated"] == "3"
    assert rows[0]["conversion"] == ""


def test_accept_text_csv_is_csv_too(partner_client, partnership, shop, today):
    response = partner_client.get(
        f"/partnerships/{partnership.id}/reports/rewards",
        {"from": today, "to": today, "group_by": "campaign"},
        HTTP_ACCEPT="text/csv",
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {row["campaign"]: row["issued_amount"] for row in rows} == {
        "cashback": "30.00",
        "bonus": "7.50",
    }
    assert {row["decisions_rewarded"] for row in rows} == {"3"}
    assert {row["decisions_budget_exhausted"] for row in rows} == {"0"}


def test_format_wins_over_the_accept_header(partner_client, partnership, shop, today):
    response = partner_client.get(
        f"/partnerships/{partnership.id}/reports/rewards",
        {"from": today, "to": today, "format": "csv"},
        HTTP_ACCEPT="application/json",
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"


# --- Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01", "to": "2026-12-01"}, "from"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2026-1-1", "to": "2026-03-01"}, "from"),
        ({"from": "2026-01-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-01-02", "group_by": "week"}, "group_by"),
        ({"from": "2026-01-01", "to": "2026-01-02", "format": "xml"}, "format"),
        ({"from": "2026-01-01", "to": "2026-01-02", "campaign": ""}, "campaign"),
    ],
)
def test_invalid_filters_are_refused_per_field(partner_client, partnership, params, field):
    body = refused(report(partner_client, partnership, **params), 422, ErrorCode.VALIDATION_ERROR)

    assert [error["field"] for error in body["errors"]] == [field]


def test_to_before_from_is_refused(partner_client, partnership):
    response = report(partner_client, partnership, **{"from": "2026-03-02", "to": "2026-03-01"})

    refused(response, 422, ErrorCode.INVALID_RANGE)


def test_a_range_longer_than_the_maximum_is_refused(partner_client, partnership):
    start = timezone.now().date() - timedelta(days=MAX_REPORT_DAYS + 10)
    longest = {"from": start, "to": start + timedelta(days=MAX_REPORT_DAYS - 1)}

    too_long = report(
        partner_client, partnership, **{**longest, "to": longest["to"] + timedelta(days=1)}
    )

    refused(too_long, 422, ErrorCode.RANGE_TOO_LONG)
    assert report(partner_client, partnership, **longest).status_code == 200


def test_an_unknown_campaign_or_trigger_is_not_found(partner_client, partnership, trigger):
    other = CampaignFactory(trigger=TriggerFactory(), slug="elsewhere")  # another partnership's
    days = {"from": "2026-03-01", "to": "2026-03-02"}

    for campaign in ("nope", str(other.id), "elsewhere"):
        response = report(partner_client, partnership, **days, campaign=campaign)
        refused(response, 404, ErrorCode.CAMPAIGN_DOES_NOT_EXIST)
    refused(
        report(partner_client, partnership, **days, trigger="nope"),
        404,
        ErrorCode.TRIGGER_DOES_NOT_EXIST,
    )


def test_errors_are_json_when_csv_was_asked_for(partner_client, partnership):
    response = report(
        partner_client, partnership, **{"from": "2026-03-02", "to": "2026-03-01", "format": "csv"}
    )

    refused(response, 422, ErrorCode.INVALID_RANGE)


def test_an_unavailable_media_type_is_not_acceptable(partner_client, partnership):
    response = partner_client.get(
        f"/partnerships/{partnership.id}/reports/rewards",
        {"from": "2026-03-01", "to": "2026-03-01"},
        HTTP_ACCEPT="application/xml",
    )

    body = refused(response, 406, ErrorCode.NOT_ACCEPTABLE)
    assert body["message"] == "Available: application/json, text/csv"


def test_without_a_key_it_is_invalid_token(api_client, partnership):
    response = report(api_client, partnership, **{"from": "2026-03-01", "to": "2026-03-01"})

    refused(response, 400, ErrorCode.INVALID_TOKEN)


# --- Modes ------------------------------------------------------------------------------------


def test_a_test_key_sees_only_test_figures(
    partner_client, test_client, partnership, trigger, process, today
):
    CampaignFactory(trigger=trigger, reward_value=Decimal("10"))
    TriggerEventFactory(trigger=trigger, mode="live")
    TriggerEventFactory(trigger=trigger, mode="test")
    TriggerEventFactory(trigger=trigger, mode="test")
    process()
    days = {"from": today, "to": today}

    test = ok(report(test_client, partnership, **days))
    live = ok(report(partner_client, partnership, **days))

    assert test["mode"] == "test"
    assert test["totals"]["money"][0]["issued_amount"] == "20.00"
    assert live["mode"] == "live"
    assert live["totals"]["money"][0]["issued_amount"] == "10.00"


def test_naming_the_other_mode_is_refused(test_client, partnership):
    response = report(
        test_client, partnership, **{"from": "2026-03-01", "to": "2026-03-01", "mode": "live"}
    )

    body = refused(response, 422, ErrorCode.MODE_MISMATCH)
    assert body["errors"][0]["field"] == "mode"


# --- Liability ----------------------------------------------------------------------------------


def liability(client, partnership, **params):
    return client.get(f"/partnerships/{partnership.id}/reports/liability", params)


def test_liability_now_is_issued_minus_reversed(partner_client, partnership, shop):
    data = ok(liability(partner_client, partnership))

    assert data["mode"] == "live"
    assert data["liability"] == [{"unit": "Points", "outstanding": "33.50"}]


def test_liability_as_of_a_past_moment(partner_client, partnership, shop):
    first_issued = Reward.objects.order_by("issued_at").first().issued_at
    last_issued = Reward.objects.order_by("issued_at").last().issued_at
    assert last_issued < RewardAdjustment.objects.order_by("created_at").first().created_at

    before = ok(
        liability(partner_client, partnership, at=(first_issued - timedelta(seconds=1)).isoformat())
    )
    between = ok(liability(partner_client, partnership, at=last_issued.isoformat()))

    assert before["liability"] == [{"unit": "Points", "outstanding": "0.00"}]
    assert between["liability"] == [{"unit": "Points", "outstanding": "37.50"}]


def test_liability_of_a_test_key_is_of_test_rewards(test_client, partnership, shop):
    data = ok(liability(test_client, partnership))

    assert data["mode"] == "test"
    assert data["liability"] == [{"unit": "Points", "outstanding": "0.00"}]


def test_liability_refuses_a_time_without_offset(partner_client, partnership):
    response = liability(partner_client, partnership, at="2026-03-01T00:00:00")

    body = refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert body["errors"][0]["field"] == "at"


# --- Exports ------------------------------------------------------------------------------------


def test_the_rewards_export_streams_the_rows_behind_the_report(
    partner_client, partnership, shop, today
):
    days = {"from": today, "to": today}
    totals = ok(report(partner_client, partnership, **days))["totals"]["money"][0]

    response = partner_client.get(f"/partnerships/{partnership.id}/reports/rewards/export", days)

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["X-Export-As-Of"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == totals["issued_count"]
    assert str(sum(Decimal(row["amount"]) for row in rows)) == totals["issued_amount"]
    assert str(sum(Decimal(row["reversed_amount"]) for row in rows)) == totals["reversed_amount"]


def test_the_reversals_export_lists_each_clawback(partner_client, partnership, shop, today):
    response = partner_client.get(
        f"/partnerships/{partnership.id}/reports/reversals/export", {"from": today, "to": today}
    )

    assert isinstance(response, StreamingHttpResponse)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(row["amount"] for row in rows) == ["0.80", "3.20"]
    assert {row["trigger_event_id"] for row in rows} == {str(shop["events"][0].id)}


def test_a_test_key_exports_only_test_rows(test_client, partnership, shop, today):
    response = test_client.get(
        f"/partnerships/{partnership.id}/reports/rewards/export", {"from": today, "to": today}
    )

    assert b"".join(response.streaming_content).decode().count("\r\n") == 1  # the header only


def test_export_refusals_are_json(partner_client, partnership):
    response = partner_client.get(
        f"/partnerships/{partnership.id}/reports/rewards/export",
        {"from": "2026-03-01", "to": "2026-03-01", "campaign": "nope"},
    )

    refused(response, 404, ErrorCode.CAMPAIGN_DOES_NOT_EXIST)


# --- Documentation ------------------------------------------------------------------------------


def test_the_operations_document_csv_and_their_refusals(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = {
        "report_rewards": "/partnerships/{partnership_id}/reports/rewards",
        "report_rewards_export": "/partnerships/{partnership_id}/reports/rewards/export",
        "report_reversals_export": "/partnerships/{partnership_id}/reports/reversals/export",
    }

    for operation_id, path in paths.items():
        operation = schema["paths"][path]["get"]
        assert operation["operationId"] == operation_id
        assert "text/csv" in operation["responses"]["200"]["content"]
        for status in ("404", "422"):
            assert set(operation["responses"][status]["content"]) == {"application/json"}
        refusals = {
            example["value"]["code"]
            for status in ("404", "422")
            for example in operation["responses"][status]["content"]["application/json"][
                "examples"
            ].values()
        }
        assert {
            ErrorCode.CAMPAIGN_DOES_NOT_EXIST,
            ErrorCode.TRIGGER_DOES_NOT_EXIST,
            ErrorCode.INVALID_RANGE,
            ErrorCode.RANGE_TOO_LONG,
            ErrorCode.MODE_MISMATCH,
        } <= refusals
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert {"from", "to", "campaign", "trigger", "mode"} <= names


def test_unique_users_are_counted_only_when_asked_for(partner_client, partnership, shop, today):
    data = ok(report(partner_client, partnership, **{"from": today, "to": today}))

    assert data["totals"]["unique_users"] is None
    assert data["totals"]["money"] == [MONEY]
