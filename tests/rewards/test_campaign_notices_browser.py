"""The budget notice on a campaign's page, in a real browser (Debian's Chromium through
Playwright, as the reports' browser test): the operator signs in and reads it at the top of
the page. Screenshot: var/screenshots/campaign-budget-exhausted.png."""

from decimal import Decimal

import pytest

from tests.factories import CampaignFactory, TriggerEventFactory
from tests.second_factor import browser_sign_in, totp_device

from .test_reports_browser import (  # noqa: F401 - sync_playwright is a fixture
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    SCREENSHOTS,
    sync_playwright,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_sees_that_a_campaigns_budget_ran_out(
    sync_playwright,  # noqa: F811 - the fixture imported above
    live_server,
    django_user_model,
    trigger,
    process,
):
    unit = trigger.partnership.reward_unit
    campaign = CampaignFactory(
        trigger=trigger, name="Winter cashback", reward_value=Decimal("10"), budget=Decimal("25")
    )
    for _ in range(3):
        TriggerEventFactory(trigger=trigger)
    process()
    device = totp_device(django_user_model.objects.create_superuser("pilot", password=PASSWORD))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page_path = f"/pilot/campaigns/campaign/{campaign.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            browser_sign_in(
                page,
                live_server.url,
                username="pilot",
                password=PASSWORD,
                next_path=page_path,
                device=device,
            )

            notice = page.get_by_text("Budget exhausted (live)")
            notice.wait_for()
            assert notice.is_visible()
            assert f"20.00 {unit} of 25.00 {unit} spent, 5.00 {unit} left" in notice.inner_text()
            page.screenshot(path=str(SCREENSHOTS / "campaign-budget-exhausted.png"))
        finally:
            browser.close()
