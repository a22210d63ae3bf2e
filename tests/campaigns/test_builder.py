"""Pilot's campaign builder: steps, facts as rows, and the rule checked with its error's
position marked, on save and as the operator types (the rule-check endpoint)."""

import re

import pytest
from django.contrib.auth.models import Permission

from campaigns.models import Campaign
from config.json_input import TOO_DEEP
from partnerships.models import PartnershipMember
from tests.factories import CampaignFactory, EndUserFactory, TriggerFactory

pytestmark = pytest.mark.django_db

ADD = "/pilot/campaigns/campaign/add/"
CHECK = "/pilot/campaigns/campaign/rule-check/"


def campaign_form(trigger, **fields) -> dict:
    """The builder's form as the page posts it: facts as rows (``facts-N-...``)."""
    facts = fields.pop("facts", [])
    data = {
        "partnership": trigger.partnership_id,
        "trigger": trigger.id,
        "name": "Cashback",
        "slug": "cashback",
        "status": "active",
        "priority": 0,
        "condition": "",
        "reward_type": "fixed",
        "reward_value": "5",
        "rounding": "ROUND_HALF_UP",
        "facts-TOTAL_FORMS": len(facts),
        "facts-INITIAL_FORMS": 0,
        "versions-TOTAL_FORMS": 0,
        "versions-INITIAL_FORMS": 0,
        "counters-TOTAL_FORMS": 0,
        "counters-INITIAL_FORMS": 0,
    }
    for index, fact in enumerate(facts):
        for key in ("name", "aggregate", "field", "window_days", "trigger"):
            data[f"facts-{index}-{key}"] = fact.get(key, "")
    return {**data, **fields}


def caret_block(page: str, field: str) -> tuple[str, str]:
    """The source line and the caret line the page draws under the field's error."""
    block = re.search(
        rf'data-rule-problem-for="{field}".*?<pre class="rule-caret[^>]*>(.*?)</pre>', page, re.S
    )
    assert block, f"no caret under {field}"
    source, caret = block.group(1).split("\n")
    return source, re.sub(r"<[^>]+>", "", caret)


def test_the_campaign_page_is_laid_out_in_the_builders_steps(admin_client, trigger):
    page = admin_client.get(ADD).content.decode()

    tabs = re.findall(r"activeFieldsetTab = '([a-z]+)'", page)
    assert tabs[:5] == ["details", "schedule", "rule", "reward", "limits"]
    assert "Add a fact" in page
    assert 'name="facts-TOTAL_FORMS"' in page
    assert "campaigns/builder.js" in page


def test_facts_are_edited_as_rows_and_saved_as_the_campaigns_list(admin_client, trigger):
    signup = TriggerFactory(partnership=trigger.partnership, name="user_signup")
    rows = [
        {"name": "spend_30d", "aggregate": "sum", "field": "amount", "window_days": 30},
        {"name": "signups", "aggregate": "count", "window_days": 7, "trigger": signup.name},
    ]

    response = admin_client.post(
        ADD, campaign_form(trigger, facts=rows, condition="facts.spend_30d > 100.0")
    )

    assert response.status_code == 302, response.content[:3000]
    assert Campaign.objects.get().facts == [
        {"name": "spend_30d", "aggregate": "sum", "field": "amount", "window_days": 30},
        {"name": "signups", "aggregate": "count", "trigger": "user_signup", "window_days": 7},
    ]
    page = admin_client.get(f"/pilot/campaigns/campaign/{Campaign.objects.get().pk}/change/")
    html = page.content.decode()
    assert 'name="facts-0-name"' in html and 'value="spend_30d"' in html
    assert 'name="facts-1-trigger"' in html and 'value="user_signup"' in html


def test_a_removed_fact_row_is_dropped(admin_client, trigger):
    rows = [{"name": "n", "aggregate": "count", "window_days": 3}]
    data = campaign_form(trigger, facts=rows)
    data["facts-0-DELETE"] = "on"

    assert admin_client.post(ADD, data).status_code == 302
    assert Campaign.objects.get().facts == []


def test_a_bad_fact_row_is_refused_naming_the_row_and_field(admin_client, trigger):
    rows = [
        {"name": "ok", "aggregate": "count", "window_days": 3},
        {"name": "spend", "aggregate": "sum", "window_days": 3},
    ]

    response = admin_client.post(ADD, campaign_form(trigger, facts=rows))

    errors = response.context["adminform"].form.errors["facts"]
    assert errors == ["fact 2, field: A sum needs the numeric context field it adds up"]
    assert not Campaign.objects.exists()


def test_a_fact_the_compiler_refuses_is_reported_at_the_facts(admin_client, trigger):
    rows = [{"name": "spend", "aggregate": "sum", "field": "currency", "window_days": 3}]

    response = admin_client.post(ADD, campaign_form(trigger, facts=rows))

    (error,) = response.context["adminform"].form.errors["facts"]
    assert error == 'fact 1: "field" must be a numeric property of transaction_completed'


def test_a_type_error_on_save_is_shown_with_its_column_and_a_caret_under_it(admin_client, trigger):
    response = admin_client.post(ADD, campaign_form(trigger, condition='context.amount > "x"'))

    page = response.content.decode()
    message = (
        "line 1, column 16: found no matching overload for '_>_' applied to '(double, string)'"
    )
    assert response.context["adminform"].form.errors["condition"] == [message]
    source, caret = caret_block(page, "condition")
    assert source == "context.amount &gt; &quot;x&quot;"
    assert caret == " " * 15 + "^"  # under the 16th character: the ">"
    assert not Campaign.objects.exists()


def test_a_reward_expression_error_is_marked_on_its_line(admin_client, trigger):
    expression = "context.amount * 0.1 +\n  context.currency"

    response = admin_client.post(
        ADD,
        campaign_form(
            trigger, reward_type="expression", reward_value="", reward_expression=expression
        ),
    )

    (error,) = response.context["adminform"].form.errors["reward_expression"]
    assert error.startswith("line 1, column 22: found no matching overload for '_+_'")
    source, caret = caret_block(response.content.decode(), "reward_expression")
    assert (source, caret) == ("context.amount * 0.1 +", " " * 21 + "^")


# --- As the operator types: the rule-check endpoint ----------------------------------------


def check(client, trigger, **fields) -> dict:
    data = {"trigger": trigger.id, "reward_type": "fixed", **fields}
    data.setdefault("facts-TOTAL_FORMS", 0)
    data.setdefault("facts-INITIAL_FORMS", 0)
    response = client.post(CHECK, data)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("condition", "line", "column", "source", "text"),
    [
        ('context.amount > "x"', 1, 16, 'context.amount > "x"', "applied to '(double, string)'"),
        ("context.currency > 5", 1, 18, "context.currency > 5", "applied to '(string, int)'"),
        (
            "context.amount > 1.0 &&\n  context.currency == 1",
            2,
            20,
            "  context.currency == 1",
            "'_==_' applied to '(string, int)'",
        ),
        ("context.amount >", 1, 17, "context.amount >", "Syntax error"),
        ('context.mcc == "5411"', 1, 8, 'context.mcc == "5411"', "undeclared reference"),
    ],
)
def test_a_rule_is_checked_as_typed_with_the_errors_position(
    admin_client, trigger, condition, line, column, source, text
):
    result = check(admin_client, trigger, condition=condition)

    problem = result["problems"]["condition"]
    assert (problem["line"], problem["column"]) == (line, column)
    assert problem["message"].startswith(f"line {line}, column {column}: ")
    assert text in problem["message"]
    assert problem["source_line"] == source
    assert problem["caret"] == " " * (column - 1) + "^"
    assert result["ok"] is False


def test_the_check_gives_the_message_saving_would_give(admin_client, trigger):
    result = check(admin_client, trigger, condition="context.amount >= 20")

    saved = admin_client.post(ADD, campaign_form(trigger, condition="context.amount >= 20"))
    assert [result["problems"]["condition"]["message"]] == saved.context["adminform"].form.errors[
        "condition"
    ]
    assert "write 20.0" in result["problems"]["condition"]["message"]


def test_a_rule_that_compiles_has_no_problems(admin_client, trigger):
    result = check(
        admin_client,
        trigger,
        condition='context.amount >= 20.0 && context.currency == "USD"',
        reward_type="expression",
        reward_expression="context.amount * 0.05",
    )

    assert result["problems"] == {}
    assert result["ok"] is True


def test_a_reward_expression_of_the_wrong_type_is_reported(admin_client, trigger):
    result = check(
        admin_client, trigger, reward_type="expression", reward_expression="context.currency"
    )

    problem = result["problems"]["reward_expression"]
    assert problem["message"] == "Must evaluate to double or int, not string"
    assert problem["line"] is None


def test_the_facts_rows_feed_the_check(admin_client, trigger):
    result = check(
        admin_client,
        trigger,
        condition='facts.spend == "a lot"',
        **{
            "facts-TOTAL_FORMS": 1,
            "facts-0-name": "spend",
            "facts-0-aggregate": "sum",
            "facts-0-field": "amount",
            "facts-0-window_days": 7,
        },
    )

    problem = result["problems"]["condition"]
    assert "applied to '(double, string)'" in problem["message"]
    assert problem["column"] == 13  # the "=="


def test_the_panel_lists_what_the_rule_can_use_from_its_environment(admin_client, trigger):
    EndUserFactory(partnership=trigger.partnership, attributes={"tier": "gold", "country": "FR"})

    result = check(
        admin_client,
        trigger,
        **{
            "facts-TOTAL_FORMS": 2,
            "facts-0-name": "purchases_30d",
            "facts-0-aggregate": "count",
            "facts-0-window_days": 30,
            "facts-1-name": "spend_7d",
            "facts-1-aggregate": "sum",
            "facts-1-field": "amount",
            "facts-1-window_days": 7,
        },
    )

    panel = result["panel"]
    terms = dict(
        re.findall(
            r'data-term="([^"]+)"><td><code>[^<]+</code> <span [^>]*data-term-type>([^<]+)<', panel
        )
    )
    assert terms == {
        "context.amount": "double",
        "context.currency": "string",
        "context.merchant_category": "string",
        "user": "map&lt;string, dyn&gt;",
        "user.country": "dyn",
        "user.tier": "dyn",
        "facts.purchases_30d": "int",
        "facts.spend_7d": "double",
        "event.trigger": "string",
        "event.occurred_at": "timestamp",
        "event.tags": "map&lt;string, string&gt;",
        "event.mode": "string",
    }
    assert "a number: compare with 20.0, not 20; required" in panel
    assert "sum of amount over the user&#x27;s transaction_completed events in the last 7" in panel
    assert 'data-function="s.startsWith(p)"' in panel
    assert 'data-function="has(user.name)"' in panel


def test_the_change_page_shows_the_panel_beside_the_rule(admin_client, trigger):
    campaign = CampaignFactory(
        trigger=trigger, facts=[{"name": "n", "aggregate": "count", "window_days": 3}]
    )

    page = admin_client.get(f"/pilot/campaigns/campaign/{campaign.pk}/change/").content.decode()

    assert "What the rule can use" in page
    assert 'data-term="context.amount"' in page
    assert 'data-term="facts.n"' in page


def test_a_trigger_of_another_partnership_is_not_checked_for_its_operator(
    client, django_user_model, trigger
):
    stranger = TriggerFactory(context_schema={"type": "object", "properties": {"secret": {}}})
    user = django_user_model.objects.create_user("ops", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="change_campaign"))
    PartnershipMember.objects.create(user=user, partnership=trigger.partnership)
    client.force_login(user)

    result = check(client, stranger, condition="true")

    assert result["problems"]["trigger"]["message"] == "Choose a trigger"
    assert "context.secret" not in result["panel"]
    assert "context.amount" in check(client, trigger)["panel"]


def test_checking_needs_a_campaign_permission(client, django_user_model, trigger):
    user = django_user_model.objects.create_user("nobody", is_staff=True)
    client.force_login(user)

    assert client.post(CHECK, {"trigger": trigger.id}).status_code == 403
    assert client.get(CHECK).status_code in (403, 405)


def test_raw_json_facts_nested_too_deep_are_a_problem_not_a_server_error(admin_client, trigger):
    """Facts posted as raw JSON (scripts, old pages) rather than rows."""
    deep = "[" * 3000 + "]" * 3000
    form = {**campaign_form(trigger), "facts": deep}
    del form["facts-TOTAL_FORMS"], form["facts-INITIAL_FORMS"]

    saved = admin_client.post(ADD, form)
    checked = admin_client.post(CHECK, {"trigger": trigger.id, "facts": deep})

    assert saved.status_code == 200
    assert saved.context["adminform"].form.errors["facts"] == [TOO_DEEP]
    assert not Campaign.objects.exists()
    assert checked.status_code == 200
    assert checked.json()["problems"]["facts"]["message"] == TOO_DEEP
