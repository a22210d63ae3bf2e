"""The streamed CSV exports' rows: range, order, filters, modes, exact amounts, consistency."""

import csv
import dataclasses
import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from rewards.models import Reward
from rewards.reports.exports import ExportKind, RowFilter, amount_sql, csv_export_start
from rewards.serializers import exact_amount
from tests.factories import CampaignFactory, EndUserFactory, PartnershipFactory, TriggerFactory
from tests.rewards.reports.support import claw_back, issue

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    partnership = PartnershipFactory(time_zone="Europe/Paris", reward_decimal_places=2)
    return CampaignFactory(trigger=TriggerFactory(partnership=partnership))


def rows_filter(campaign, start=NOON - timedelta(days=1), end=NOON + timedelta(days=1), **more):
    return RowFilter(partnership=campaign.partnership, mode="live", start=start, end=end, **more)


def export(rows: RowFilter, kind=ExportKind.REWARDS, chunk_rows=5000) -> list[dict]:
    text = "".join(csv_export_start(kind=kind, rows=rows).lines(chunk_rows=chunk_rows))
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_rewards_of_the_range_oldest_first_with_their_columns(shop):
    late = issue(shop, at=NOON + timedelta(hours=11, minutes=30))  # 00:30 on the 11th in Paris
    early = issue(shop, at=NOON, amount="2.5")
    issue(shop, at=NOON - timedelta(days=2))  # before the range
    issue(shop, at=NOON + timedelta(days=1))  # the range's end is exclusive

    rows = export(rows_filter(shop))

    assert [row["reward_id"] for row in rows] == [str(early.id), str(late.id)]
    first = rows[0]
    assert first["issued_at"] == "2026-03-10T12:00:00.000000Z"
    assert first["amount"] == "2.50"
    assert first["reversed_amount"] == "0.00"
    assert first["campaign"] == shop.slug
    assert first["trigger"] == shop.trigger.name
    assert first["external_user_id"] == early.end_user.external_user_id
    assert first["status"] == "issued"
    assert first["mode"] == "live"
    assert first["occurred_at"] == "2026-03-10T11:59:59.000000Z"
    assert [row["local_day"] for row in rows] == ["2026-03-10", "2026-03-11"]


def test_chunks_neither_repeat_nor_skip_rows_that_share_their_issued_at(shop):
    user = EndUserFactory(partnership=shop.partnership)
    ids = {str(issue(shop, at=NOON, user=user).id) for _ in range(7)}
    ids |= {str(issue(shop, at=NOON + timedelta(microseconds=1), user=user).id) for _ in range(4)}

    rows = export(rows_filter(shop), chunk_rows=3)

    listed = [row["reward_id"] for row in rows]
    assert sorted(listed) == sorted(ids)
    keys = [(row["issued_at"], row["reward_id"]) for row in rows]
    assert keys == sorted(keys)


def test_a_live_export_never_lists_test_rewards_nor_the_other_way_round(shop):
    live = issue(shop, at=NOON)
    test = issue(shop, at=NOON, mode="test")

    test_rows = dataclasses.replace(rows_filter(shop), mode="test")

    assert [row["reward_id"] for row in export(rows_filter(shop))] == [str(live.id)]
    assert [row["reward_id"] for row in export(test_rows)] == [str(test.id)]


def test_another_partnerships_rewards_are_never_listed(shop):
    other = CampaignFactory(trigger=TriggerFactory())
    issue(other, at=NOON)

    assert export(rows_filter(shop)) == []


def test_campaign_and_trigger_filters(shop):
    signups = TriggerFactory(partnership=shop.partnership, name="user_signup", context_schema={})
    welcome = CampaignFactory(trigger=signups)
    purchase = issue(shop, at=NOON)
    signup = issue(welcome, at=NOON)

    by_campaign = export(rows_filter(shop, campaign_ids=frozenset({welcome.id})))
    by_trigger = export(rows_filter(shop, trigger_ids=frozenset({shop.trigger_id})))

    assert [row["reward_id"] for row in by_campaign] == [str(signup.id)]
    assert [row["reward_id"] for row in by_trigger] == [str(purchase.id)]


def test_rows_issued_after_the_moment_of_the_export_are_left_out(shop):
    before = issue(shop, at=NOON)
    started = csv_export_start(kind=ExportKind.REWARDS, rows=rows_filter(shop))
    issue(shop, at=started.as_of + timedelta(milliseconds=1))  # still inside the range

    text = "".join(started.lines())

    assert [row["reward_id"] for row in csv.DictReader(io.StringIO(text))] == [str(before.id)]


def test_amounts_finer_than_the_partnerships_places_are_not_rounded(shop):
    issue(shop, at=NOON, amount="1.234567")  # issued when the partnership had 6 places
    issue(shop, at=NOON + timedelta(seconds=1), amount="100")

    assert [row["amount"] for row in export(rows_filter(shop))] == ["1.234567", "100.00"]


@pytest.mark.parametrize("places", [0, 2, 6])
@pytest.mark.parametrize(
    "amount", ["0", "10", "2.5", "0.000001", "1.234567", "-3.5", "123456789012.12"]
)
def test_sql_and_python_write_an_amount_alike(amount, places):
    """The CSV rows (PostgreSQL) and the report API (Python) write amounts by one rule."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {amount_sql('%(a)s::numeric(18,6)')}", {"a": amount, "places": places}
        )
        (in_sql,) = cursor.fetchone()

    assert in_sql == exact_amount(Decimal(amount).quantize(Decimal("0.000001")), places)


def test_text_a_spreadsheet_would_run_as_a_formula_is_neutralized(shop):
    user = EndUserFactory(partnership=shop.partnership, external_user_id="=HYPERLINK(1)")
    issue(shop, at=NOON, user=user)

    assert export(rows_filter(shop))[0]["external_user_id"] == "'=HYPERLINK(1)"


def test_reversal_rows_one_per_adjustment_at_the_moment_it_happened(shop):
    reward = issue(shop, at=NOON - timedelta(days=3), amount="10")  # issued before the range
    first = claw_back(reward, "2.5", at=NOON, reason="Partial refund")
    claw_back(reward, "1", at=NOON + timedelta(days=2))  # after the range
    issue(shop, at=NOON)  # a reward, not a reversal

    rows = export(rows_filter(shop), kind=ExportKind.REVERSALS)

    assert len(rows) == 1
    row = rows[0]
    assert row["adjustment_id"] == str(first.id)
    assert row["reversal_id"] == str(first.reversal_id)
    assert row["reward_id"] == str(reward.id)
    assert row["amount"] == "2.50"
    assert row["reward_amount"] == "10.00"
    assert row["reason"] == "Partial refund"
    assert row["created_at"] == "2026-03-10T12:00:00.000000Z"
    assert row["reward_issued_at"] == "2026-03-07T12:00:00.000000Z"
    assert row["local_day"] == "2026-03-10"


def test_the_header_comes_first_even_without_rows(shop):
    lines = list(csv_export_start(kind=ExportKind.REVERSALS, rows=rows_filter(shop)).lines())

    assert lines == [
        "adjustment_id,created_at,local_day,reversal_id,reward_id,trigger_event_id,campaign_id,"
        "campaign,trigger,user_uuid,external_user_id,amount,unit,mode,reason,reward_amount,"
        "reward_issued_at\r\n"
    ]


@pytest.mark.django_db(transaction=True)
def test_every_chunk_reads_the_snapshot_of_the_first(shop):
    """Rows written while an export runs, behind or ahead of its reader, are not in it, and a
    reward reversed meanwhile is listed as it was: one state of the ledger."""
    first = issue(shop, at=NOON)
    later = issue(shop, at=NOON + timedelta(hours=2))
    lines = csv_export_start(kind=ExportKind.REWARDS, rows=rows_filter(shop)).lines(chunk_rows=1)
    header, chunk = next(lines), next(lines)  # the snapshot is taken

    def meanwhile():
        issue(shop, at=NOON + timedelta(hours=1))  # between the two listed, before as_of
        Reward.objects.filter(pk=later.pk).update(status="reversed", reversed_amount=later.amount)
        connection.close()

    writer = threading.Thread(target=meanwhile)
    writer.start()
    writer.join()
    rest = "".join(lines)

    rows = list(csv.DictReader(io.StringIO(header + chunk + rest)))
    assert [row["reward_id"] for row in rows] == [str(first.id), str(later.id)]
    assert rows[1]["status"] == "issued"
    assert rows[1]["reversed_amount"] == "0.00"
