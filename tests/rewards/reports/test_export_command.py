"""``manage.py export_rewards``: the same rows from the command line, to stdout or a file."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError

from tests.factories import CampaignFactory, PartnershipFactory, TriggerFactory
from tests.rewards.reports.support import claw_back, issue, run

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    partnership = PartnershipFactory(time_zone="America/New_York")
    return CampaignFactory(trigger=TriggerFactory(partnership=partnership), slug="cashback")


def test_rewards_of_local_days_to_stdout(shop):
    # 03:00 UTC on the 10th is the 9th in New York.
    issue(shop, at=NOON.replace(hour=3), amount="4")
    tenth = issue(shop, at=NOON, amount="6")

    out, err = run(
        "--partnership", str(shop.partnership_id), "--from", "2026-03-10", "--to", "2026-03-10"
    )

    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["reward_id"] for row in rows] == [str(tenth.id)]
    assert "as of" in err


def test_reversals_of_one_campaign_to_a_file(shop, tmp_path):
    other = CampaignFactory(trigger=shop.trigger)
    claw_back(issue(shop, at=NOON), "2.5", at=NOON)
    claw_back(issue(other, at=NOON), "1", at=NOON)
    target = tmp_path / "reversals.csv"

    out, _ = run(
        "--partnership",
        str(shop.partnership_id),
        "--mode",
        "live",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-10",
        "--campaign",
        "cashback",
        "--reversals",
        "--output",
        str(target),
    )

    assert out == ""
    rows = list(csv.DictReader(target.open(newline="")))
    assert [(row["campaign"], row["amount"]) for row in rows] == [("cashback", "2.50")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-10", "--to", "2026-03-10", "--campaign", "nope"], "campaign"),
        (["--from", "2026-03-11", "--to", "2026-03-10"], "ends before it starts"),
        (["--from", "10/03/2026", "--to", "2026-03-10"], "YYYY-MM-DD"),
    ],
)
def test_bad_arguments_are_command_errors(shop, args, message):
    with pytest.raises(CommandError, match=message):
        run("--partnership", str(shop.partnership_id), *args)


def test_an_unknown_partnership(shop):
    with pytest.raises(CommandError, match="No partnership"):
        run("--partnership", "nope", "--from", "2026-03-10", "--to", "2026-03-10")
