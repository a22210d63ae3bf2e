"""The trigger schema's field editor in a real browser (Chromium via Playwright, as the reports'
browser test): add rows, see the raw JSON they write, come back to the rows, save; then check
a change that would break a campaign, before saving. Screenshots: var/screenshots/."""

import json

import pytest

from tests.factories import CampaignFactory
from tests.rewards.test_reports_browser import (  # noqa: F401 - the fixture
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    sync_playwright,
)
from tests.second_factor import browser_sign_in, totp_device
from triggers.models import Trigger

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pilot-browser-test"


def test_an_operator_defines_a_trigger_with_the_field_editor(
    sync_playwright,  # noqa: F811
    live_server,
    django_user_model,
    partnership,
    monkeypatch,
):
    # The test reads the database between browser steps, inside Playwright's event loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    device = totp_device(django_user_model.objects.create_superuser("pilot", password=PASSWORD))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
            browser_sign_in(
                page,
                live_server.url,
                username="pilot",
                password=PASSWORD,
                next_path="/pilot/triggers/trigger/add/",
                device=device,
            )

            page.select_option("#id_partnership", str(partnership.pk))
            page.fill("#id_name", "purchase")
            page.fill("[name=rows-0-name]", "amount")
            page.select_option("[name=rows-0-type]", "number")
            page.check("[name=rows-0-required]")
            page.fill("[name=rows-0-minimum]", "0")
            page.click("[data-add-row]")
            page.fill("[name=rows-1-name]", "channel")
            page.select_option("[name=rows-1-type]", "enum")
            page.fill("[name=rows-1-values]", "web\napp")

            # The raw JSON shows what the rows write; back to the rows, nothing lost.
            page.check("input[name=schema_mode][value=raw]")
            raw = page.locator("textarea[data-raw-schema]")
            page.wait_for_function(
                "() => document.querySelector('textarea[data-raw-schema]').value"
                ".includes('channel')"
            )
            assert json.loads(raw.input_value())["required"] == ["amount"]
            page.screenshot(path=str(SCREENSHOTS / "trigger-editor-raw.png"), full_page=True)
            page.check("input[name=schema_mode][value=fields]")
            page.wait_for_selector("[data-fields-pane]:not([hidden])")
            assert page.input_value("[name=rows-1-values]") == "web\napp"
            page.screenshot(path=str(SCREENSHOTS / "trigger-editor-rows.png"), full_page=True)

            page.locator("[type=submit][name=_continue]").first.click()
            page.wait_for_url("**/change/**")
            trigger = Trigger.objects.get(name="purchase")
            assert trigger.context_schema == {
                "type": "object",
                "properties": {
                    "amount": {"type": "number", "minimum": 0},
                    "channel": {"type": "string", "enum": ["web", "app"]},
                },
                "required": ["amount"],
            }
            assert "It matches the schema" in page.locator("#trigger-example").inner_text()

            # Removing a field an active campaign reads: the check names it, nothing saved.
            CampaignFactory(
                trigger=trigger, name="Big spenders", slug="big", condition="context.amount > 9.0"
            )
            page.check("[name=rows-0-DELETE]")
            page.click("[data-schema-check]")
            result = page.locator("[data-check-result]")
            result.get_by_text("Big spenders (big, active)", exact=False).wait_for()
            assert "undeclared reference to 'context.amount'" in result.inner_text()
            page.screenshot(path=str(SCREENSHOTS / "trigger-editor-check.png"), full_page=True)
            trigger.refresh_from_db()
            assert "amount" in trigger.context_schema["properties"]
        finally:
            browser.close()
