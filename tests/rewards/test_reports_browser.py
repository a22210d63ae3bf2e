"""Pilot's reports in a real browser: Debian's Chromium driven by Playwright (no browser
download), against a live server. Sign in (password, then the authenticator app's code), read
the dashboard, see the chart drawn, change the range, download the CSV, open a campaign's
report. Screenshots: var/screenshots/.

Without Chromium or the playwright package the test skips with the reason, except under CI
(CI=true), where it fails: `.ci/run` installs Chromium and must run this test.
"""

import csv
import os
from datetime import timedelta
from pathlib import Path

import pytest

from rewards.reports.pilot_filters import local_today
from tests.second_factor import totp_code, totp_device
from tests.support import ROOT

from .pilot_reports_data import EXPECTED_TOTALS, build_scenario

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "pilot-browser-test"

# Painted pixels of a canvas, and those of the issued bars' colour (#7c3aed).
PAINTED_JS = """(canvas) => {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0, issued = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    painted++;
    if (Math.abs(data[i] - 124) < 12 && Math.abs(data[i + 1] - 58) < 12
        && Math.abs(data[i + 2] - 237) < 12) issued++;
  }
  return { painted, issued };
}"""


@pytest.fixture
def sync_playwright():
    """Playwright's sync API, or why it cannot run here (a failure under CI)."""
    problems = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        problems.append("the playwright package is missing (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        problems.append(f"Chromium is missing at {CHROMIUM} (`make browser` installs it)")
    if problems:
        reason = "browser test not run: " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


def figure(page, name: str) -> str:
    return page.locator(f'[data-figure="{name}"]').inner_text().strip()


def wait_for_chart(page, name: str) -> dict:
    """Waits until the chart's canvas has pixels drawn (Chart.js animates) and returns counts."""
    canvas = page.locator(f'[data-chart="{name}"] canvas').element_handle()
    page.wait_for_function(f"(canvas) => ({PAINTED_JS})(canvas).painted > 500", arg=canvas)
    page.wait_for_timeout(1200)  # the animation's end: the bars at their full height
    return page.evaluate(PAINTED_JS, canvas)


def test_an_operator_reads_the_reports_in_a_browser(
    sync_playwright, live_server, django_user_model, partnership, trigger, partner_client
):
    scenario = build_scenario(
        partnership=partnership, trigger=trigger, partner_client=partner_client
    )
    device = totp_device(django_user_model.objects.create_superuser("pilot", password=PASSWORD))
    today = local_today(partnership)
    past = today - timedelta(days=40)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_context(
                accept_downloads=True, viewport={"width": 1400, "height": 1000}
            ).new_page()
            page.goto(f"{live_server.url}/pilot/login/?next=/pilot/reports/")
            page.fill("#id_username", "pilot")
            page.fill("#id_password", PASSWORD)
            page.locator("form button[type=submit], form input[type=submit]").first.click()
            page.wait_for_url("**/pilot/second-factor/**")  # a superuser can move money
            page.fill("#id_token", totp_code(device))
            page.locator("#second-factor-form button[type=submit]").click()
            page.wait_for_url("**/pilot/reports/")

            # The dashboard: the totals, the chart drawn.
            assert figure(page, "total:Points:issued_count") == EXPECTED_TOTALS["issued_count"]
            assert figure(page, "total:Points:net_amount") == EXPECTED_TOTALS["net_amount"]
            assert figure(page, "total:conversion") == EXPECTED_TOTALS["conversion"]
            pixels = wait_for_chart(page, "daily")
            assert pixels["painted"] > 500
            assert pixels["issued"] > 50, pixels  # the issued bar, in its colour
            page.screenshot(path=str(SCREENSHOTS / "reports-dashboard.png"), full_page=True)

            # Another range: the numbers change, and the URL keeps the filters.
            page.fill("input[name=from]", past.isoformat())
            page.fill("input[name=to]", (past + timedelta(days=6)).isoformat())
            page.locator("#report-filters button[type=submit]").click()
            page.wait_for_url(f"**from={past.isoformat()}**")
            assert figure(page, "total:Points:issued_count") == "0"
            assert figure(page, "total:Points:issued_amount") == "0.00"
            page.screenshot(path=str(SCREENSHOTS / "reports-dashboard-past.png"), full_page=True)

            page.fill("input[name=from]", (today - timedelta(days=6)).isoformat())
            page.fill("input[name=to]", today.isoformat())
            page.locator("#report-filters button[type=submit]").click()
            page.wait_for_url(f"**to={today.isoformat()}**")
            assert figure(page, "total:Points:issued_count") == "5"

            # The CSV of the daily table, as shown.
            with page.expect_download() as download_info:
                page.get_by_role("link", name="Download CSV").first.click()
            download = download_info.value
            with open(download.path(), newline="") as file:
                rows = list(csv.reader(file))
            assert rows[0][:3] == ["Day", "Unit", "Issued"]
            assert len(rows) == 1 + 7
            (today_row,) = (row for row in rows[1:] if row[0] == today.isoformat())
            assert today_row[1:7] == ["Points", "5", "45.00", "2", "14.00", "31.00"]
            assert figure(page, f"day:{today.isoformat()}:Points:issued_amount") == "45.00"

            # A campaign's report: budget, burn-down drawn.
            page.get_by_role("link", name=scenario.cashback.name).first.click()
            page.wait_for_url(f"**/pilot/reports/campaigns/{scenario.cashback.pk}/**")
            assert figure(page, "budget:left") == "74.00"
            assert figure(page, "total:Points:issued_count") == "4"
            assert wait_for_chart(page, "daily")["painted"] > 500
            assert wait_for_chart(page, "burn-down")["painted"] > 500
            page.screenshot(path=str(SCREENSHOTS / "reports-campaign.png"), full_page=True)
        finally:
            browser.close()
