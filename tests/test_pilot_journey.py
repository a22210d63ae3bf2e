"""One operator journey through Pilot in a real browser (headless Chromium through Playwright,
as the reports' test), end to end on real processes: a Campaign Manager signs in with their
second factor, defines a trigger with the field editor, writes a campaign whose condition has a
type error and sees it at its column, fixes it and saves the draft, dry-runs it, backtests it on
a real Celery worker, and submits it; an Admin approves it in another browser; an event sent to
the partner API over HTTP is processed by the workers' pipeline, found in Pilot by its user's
exact id with its decision in words, and its reward reversed from Pilot with a reason.

Screenshots: var/screenshots/journey-<n>-<step>.png (docs/pilot.md, "Browser tests").
"""

from datetime import timedelta

import httpx
import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from campaigns.models import Campaign
from partnerships.models import PartnershipMember
from partnerships.roles import ADMIN, CAMPAIGN_MANAGER
from rewards.models import Reversal, Reward
from rewards.simulation.models import Backtest
from tests.factories import EndUserFactory, TriggerEventFactory
from tests.rewards.test_reports_browser import (  # noqa: F401 - the fixture
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    SCREENSHOTS,
    sync_playwright,
)
from tests.second_factor import browser_sign_in, browser_type_condition, totp_device
from tests.support import celery_worker, process_env, process_queued
from triggers.models import Trigger, TriggerEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SLUG = "big-baskets"
# The past events the backtest replays: (user, amount); the rule rewards amounts over 50.
PAST_EVENTS = [("past-1", 80), ("past-2", 120), ("past-1", 30)]


def operator(django_user_model, *, name: str, role: str, partnership):
    """A staff user with ``role``, a member of ``partnership``, and their authenticator app."""
    user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    PartnershipMember.objects.create(user=user, partnership=partnership)
    return totp_device(user)


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"journey-{name}.png"), full_page=True)


def message(page, text: str) -> None:
    """Waits for a message of Pilot's (success, warning or error) containing ``text``."""
    page.get_by_text(text, exact=False).first.wait_for()


def cells_spaced(table) -> bool:
    """Whether a detail page's table pads its cells (unpadded, "big-basketsrewarded4.00")."""
    padding = table.locator("td").first.evaluate("td => getComputedStyle(td).paddingRight")
    return padding != "0px"


def shown(page, label: str) -> str:
    """The read-only value a detail page shows under ``label``."""
    value = page.locator(
        f'xpath=//label[normalize-space()="{label}" or normalize-space()="{label}:"]'
        '/parent::div/following-sibling::div[1]/div[contains(@class, "readonly")]'
    )
    return value.inner_text().strip()


def seed_past_events(trigger: Trigger) -> None:
    """Events the partner sent over the last days, already processed (before the campaign)."""
    users = {}
    for days_ago, (external_id, amount) in enumerate(PAST_EVENTS, start=1):
        if external_id not in users:
            users[external_id] = EndUserFactory(
                partnership=trigger.partnership, external_user_id=external_id
            )
        moment = timezone.now() - timedelta(days=days_ago)
        TriggerEventFactory(
            trigger=trigger,
            end_user=users[external_id],
            context={"amount": amount},
            occurred_at=moment,
            received_at=moment,
            deliver_at=moment,
            status=TriggerEvent.Status.PROCESSED,
        )


def test_an_operator_journey_from_a_trigger_to_a_reversed_reward(
    sync_playwright,  # noqa: F811
    live_server,
    django_user_model,
    partnership,
    api_key,
    tmp_path,
    monkeypatch,
):
    # The test reads and writes the database between browser steps, inside Playwright's loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    manager_app = operator(
        django_user_model, name="carla", role=CAMPAIGN_MANAGER, partnership=partnership
    )
    admin_app = operator(django_user_model, name="ada", role=ADMIN, partnership=partnership)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            viewport = {"viewport": {"width": 1500, "height": 1100}}
            context = browser.new_context(**viewport)
            page = context.new_page()

            # 1. The Campaign Manager signs in: password, then their app's code.
            browser_sign_in(
                page,
                live_server.url,
                username="carla",
                password=PASSWORD,
                next_path="/pilot/",
                device=manager_app,
            )
            assert "carla" in page.locator("body").inner_text()
            shot(page, "1-signed-in")

            # 2. A trigger, defined with the field editor's rows.
            page.goto(f"{live_server.url}/pilot/triggers/trigger/add/")
            page.select_option("#id_partnership", str(partnership.pk))
            page.fill("#id_name", "purchase")
            page.fill("[name=rows-0-name]", "amount")
            page.select_option("[name=rows-0-type]", "number")
            page.check("[name=rows-0-required]")
            page.fill("[name=rows-0-minimum]", "0")
            page.locator("[type=submit][name=_continue]").first.click()
            page.wait_for_url("**/change/**")
            assert "It matches the schema" in page.locator("#trigger-example").inner_text()
            shot(page, "2-trigger")
            trigger = Trigger.objects.get(partnership=partnership, name="purchase")
            assert trigger.context_schema["required"] == ["amount"]
            seed_past_events(trigger)

            # 3. A campaign whose condition has a type error: marked at its column; fixed, saved.
            page.goto(f"{live_server.url}/pilot/campaigns/campaign/add/")
            page.select_option("#id_partnership", str(partnership.pk))
            page.select_option("#id_trigger", str(trigger.pk))
            page.fill("#id_name", "Big baskets")
            page.locator("#id_name").blur()
            page.get_by_text("Rule", exact=True).first.click()
            browser_type_condition(page, 'context.amount > "x"')
            problem = page.locator('[data-rule-problem-for="condition"]')
            problem.locator(".rule-caret").wait_for()
            assert (
                problem.locator(".rule-problem-message")
                .inner_text()
                .startswith("line 1, column 16: found no matching overload for '_>_'")
            )
            assert problem.locator(".rule-caret").inner_text().split("\n") == [
                'context.amount > "x"',
                " " * 15 + "^",
            ]
            shot(page, "3-type-error")
            page.fill("#id_condition", "context.amount > 50.0")
            page.locator('[data-rule-ok-for="condition"]:not(.hidden)').wait_for()
            assert problem.is_hidden()
            page.get_by_text("Reward", exact=True).first.click()
            page.fill("#id_reward_value", "4")
            page.locator("[name=_continue]").first.click()
            page.wait_for_url("**/campaigns/campaign/*/change/**")
            message(page, "was added successfully")
            campaign = Campaign.objects.get(slug=SLUG)
            assert (campaign.status, campaign.condition) == ("draft", "context.amount > 50.0")
            change_url = page.url.split("?")[0]
            shot(page, "3-draft-saved")

            # 4. A dry run of the draft (a new tab): its decision and amount, nothing written.
            with context.expect_page() as opened:
                page.get_by_role("button", name="Dry run these values").click()
            dry = opened.value
            dry.wait_for_load_state()
            dry.fill("#id_dryrun-external_user_id", "someone")
            dry.fill("#id_dryrun-context", '{"amount": 80}')
            dry.get_by_role("button", name="Dry run", exact=True).click()
            dry.locator("#dry-run-result").wait_for()
            decision = dry.locator(f'[data-decision="{SLUG}"]')
            assert decision.locator("[data-outcome]").inner_text() == "Rewarded"
            assert decision.locator("[data-amount]").inner_text() == "4.00"
            shot(dry, "4-dry-run")
            dry.close()

            # 5. A backtest over the seeded week, run by a real Celery worker.
            page.get_by_role("link", name="Backtest", exact=True).first.click()
            page.wait_for_url("**/backtest/")
            page.fill("#id_days", "7")
            page.select_option("#id_mode", "live")
            with celery_worker(process_env(), tmp_path / "worker.log", queues="celery"):
                page.get_by_role("button", name="Run the backtest").click()
                page.wait_for_url("**/backtests/**")
                # The page polls the run's status and reloads once the worker is done.
                status = page.locator('[data-figure="status"]', has_text="Done")
                status.wait_for(timeout=120_000)
            figures = {
                name: page.locator(f'[data-figure="{name}"]').inner_text().strip()
                for name in ("events", "rewards", "amount", "users", "outcome:condition_false")
            }
            assert figures == {
                "events": "3",
                "rewards": "2",
                "amount": "8.00 Points",
                "users": "2",
                "outcome:condition_false": "1",
            }
            assert "Counters start at zero" in page.locator("#assumptions").inner_text()
            shot(page, "5-backtest")
            assert Backtest.objects.get(campaign_id=campaign.pk).status == "done"

            # 6. Submitted by the manager, approved by an Admin in another browser.
            page.goto(change_url)
            page.get_by_role("link", name="Submit for approval").click()
            page.locator("#lifecycle-confirm").click()
            message(page, "Submitted for approval")
            shot(page, "6-submitted")
            assert page.get_by_role("link", name="Approve").count() == 0  # four eyes

            admin_context = browser.new_context(**viewport)
            admin = admin_context.new_page()
            browser_sign_in(
                admin,
                live_server.url,
                username="ada",
                password=PASSWORD,
                next_path=change_url.removeprefix(live_server.url),
                device=admin_app,
            )
            admin.get_by_role("link", name="Approve", exact=True).click()
            admin.locator("#lifecycle-confirm").click()
            message(admin, "Approved: it is live")
            shot(admin, "6-approved")
            assert Campaign.objects.get(pk=campaign.pk).status == "active"

            # 7. An event through the partner API (HTTP, the live key), processed as the
            # workers do, found in Pilot by its user's exact id, its decision in words.
            response = httpx.post(
                f"{live_server.url}/partnerships/{partnership.pk}/triggers",
                json={
                    "trigger_name": "purchase",
                    "external_user_id": "journey-alice",
                    "transaction_context": {"amount": 75.5},
                },
                headers={"x-api-key": api_key.plaintext},
            )
            assert response.status_code == 200, response.text
            event_id = response.json()["data"]["trigger_event_id"]
            process_queued()

            page.goto(f"{live_server.url}/pilot/triggers/triggerevent/")
            page.fill("input[name=q]", "journey-al")  # exact only: a prefix finds nothing
            page.keyboard.press("Enter")
            page.wait_for_url("**q=journey-al**")
            assert page.locator(f'a[href*="{event_id}"]').count() == 0
            page.fill("input[name=q]", "journey-alice")
            page.keyboard.press("Enter")
            page.wait_for_url("**q=journey-alice**")
            page.locator(f'a[href*="/triggerevent/{event_id}/change/"]').first.click()
            page.wait_for_url(f"**/triggerevent/{event_id}/change/**")
            row = page.locator("#decisions tbody tr", has_text=SLUG)
            assert row.locator("td").all_inner_texts()[:4] == [SLUG, "rewarded", "4.00", "Rewarded"]
            assert cells_spaced(page.locator("#decisions"))
            shot(page, "7-event")

            # 8. The Admin reverses its reward from Pilot with a reason.
            reward = Reward.objects.get(trigger_event_id=event_id)
            admin.goto(f"{live_server.url}/pilot/triggers/triggerevent/{event_id}/change/")
            admin.locator(f'a[href*="/rewards/reward/{reward.pk}/change/"]').first.click()
            admin.wait_for_url(f"**/reward/{reward.pk}/change/**")
            admin.locator("#object-actions").get_by_role("link", name="Reverse").click()
            admin.fill("#id_reason", "order refunded")
            admin.get_by_role("button", name="Reverse").click()
            admin.wait_for_url(f"**/reward/{reward.pk}/change/**")
            message(admin, "Reversed: 4.00 Points")
            reversals = admin.locator("#adjustments").inner_text()
            assert "-4.00 Points" in reversals and "order refunded" in reversals
            assert "ada" in reversals and cells_spaced(admin.locator("#adjustments"))
            assert [shown(admin, "Amount"), shown(admin, "Reversed")] == ["4.00", "4.00"]
            assert admin.locator("#object-actions").count() == 0  # nothing left to reverse
            shot(admin, "8-reversed")
        finally:
            browser.close()

    reward.refresh_from_db()
    assert reward.status == "reversed"
    assert Reversal.objects.get().operator.get_username() == "ada"
