"""The campaign builder in a real browser (Chromium through Playwright, as the reports' test):
a type error is marked as it is typed, the panel follows the trigger and the fact rows, the
fixed rule saves, and "Dry run these values" judges the unsaved campaign. Screenshots:
var/screenshots/builder-*.png."""

import pytest

from campaigns.models import Campaign
from tests.factories import CampaignFactory
from tests.rewards.test_reports_browser import (  # noqa: F401 - the fixture
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    SCREENSHOTS,
    sync_playwright,
)
from tests.second_factor import browser_sign_in, browser_type_condition, totp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_builds_a_rule_sees_its_error_fixes_it_and_dry_runs_it(
    sync_playwright,  # noqa: F811
    live_server,
    django_user_model,
    trigger,
):
    CampaignFactory(trigger=trigger, slug="everyone", reward_value=1)
    device = totp_device(django_user_model.objects.create_superuser("pilot", password=PASSWORD))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            browser_sign_in(
                page,
                live_server.url,
                username="pilot",
                password=PASSWORD,
                next_path="/pilot/campaigns/campaign/add/",
                device=device,
            )

            page.select_option("#id_partnership", str(trigger.partnership_id))
            page.select_option("#id_trigger", str(trigger.id))
            page.fill("#id_name", "Big baskets")
            page.locator("#id_name").blur()
            assert page.input_value("#id_slug") == "big-baskets"  # prepopulated from the name
            page.get_by_text("Rule", exact=True).first.click()

            # A type error, typed: marked at its column, a caret under the ">".
            browser_type_condition(page, 'context.amount > "x"')
            problem = page.locator('[data-rule-problem-for="condition"]')
            problem.locator(".rule-caret").wait_for()
            assert (
                problem.locator(".rule-problem-message")
                .inner_text()
                .startswith("line 1, column 16: found no matching overload for '_>_'")
            )
            caret = problem.locator(".rule-caret").inner_text().split("\n")
            assert caret == ['context.amount > "x"', " " * 15 + "^"]
            panel = page.locator("[data-rule-vocabulary]")
            assert panel.locator('[data-term="context.amount"] [data-term-type]').inner_text() == (
                "double"
            )
            page.screenshot(path=str(SCREENSHOTS / "builder-type-error.png"), full_page=True)

            # A fact row: the panel lists it with its type.
            page.get_by_role("button", name="Add a fact").click()
            page.fill("[name=facts-0-name]", "baskets_30d")
            page.fill("[name=facts-0-window_days]", "30")
            page.locator('[data-term="facts.baskets_30d"]').wait_for()

            # Fixed: it compiles.
            page.fill("#id_condition", "context.amount > 50.0 && facts.baskets_30d >= 1")
            page.locator('[data-rule-ok-for="condition"]:not(.hidden)').wait_for()
            assert problem.is_hidden()
            page.get_by_text("Reward", exact=True).first.click()
            page.fill("#id_reward_value", "4")

            # The unsaved campaign, dry-run in a new tab.
            with context.expect_page() as opened:
                page.get_by_role("button", name="Dry run these values").click()
            dry = opened.value
            dry.wait_for_load_state()
            dry.fill("#id_dryrun-external_user_id", "alice")
            dry.fill("#id_dryrun-context", '{"amount": 80, "currency": "USD"}')
            dry.get_by_role("button", name="Dry run", exact=True).click()
            dry.locator("#dry-run-result").wait_for()
            mine = dry.locator('[data-decision="big-baskets"]')
            assert mine.locator("[data-outcome]").inner_text() == "Rewarded"
            assert mine.locator("[data-amount]").inner_text() == "4.00"
            assert mine.locator("[data-facts]").inner_text() == "facts.baskets_30d = 1"
            dry.screenshot(path=str(SCREENSHOTS / "builder-dry-run.png"), full_page=True)

            page.locator("[name=_save]").click()
            page.wait_for_url("**/campaigns/campaign/")
        finally:
            browser.close()

    # (The ORM is refused inside Playwright's event loop: the database is read after it.)
    saved = Campaign.objects.get(slug="big-baskets")
    assert saved.facts == [{"name": "baskets_30d", "aggregate": "count", "window_days": 30}]
    assert saved.condition == "context.amount > 50.0 && facts.baskets_30d >= 1"
