"""The partnership's user-attribute schema in campaign rules: ``user.<name>`` type-checked at
save; a schema change that would break an active campaign is refused in Pilot, naming it."""

import json

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from campaigns.rules import RuleEnvironment
from campaigns.services import user_schema_change_check
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "properties": {"tier": {"type": "string"}, "age": {"type": "integer"}},
}


@pytest.fixture
def typed(partnership):
    partnership.user_attribute_schema = SCHEMA
    partnership.save()
    return partnership


def save_errors(trigger, condition) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        CampaignFactory(trigger=trigger, condition=condition)
    return raised.value.message_dict["condition"]


def test_declared_attributes_compile_typed(typed, trigger):
    campaign = CampaignFactory(trigger=trigger, condition='user.tier == "gold" && user.age >= 18')

    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_a_typo_in_an_attribute_is_refused_with_its_position(typed, trigger):
    (message,) = save_errors(trigger, 'context.amount > 1.0 && user.tyer == "gold"')

    assert message.startswith("line 1, column 30: user.tyer is not an attribute")
    assert 'user["tyer"]' in message


def test_a_type_error_on_an_attribute_is_refused_with_its_position(typed, trigger):
    (message,) = save_errors(trigger, "user.tier == 3")

    assert message.startswith("line 1, column 11: found no matching overload")


def test_map_access_has_and_strings_still_compile(typed, trigger):
    condition = 'user["nickname"] == "x" || has(user.vip) || "user.tyer" == context.currency'

    campaign = CampaignFactory(trigger=trigger, condition=condition)

    assert campaign.pk is not None


def test_has_of_a_declared_attribute_keeps_compiling_and_tests_the_map(typed, trigger):
    condition = '!has(user.tier) || has( user . age ) && user.tier == "gold"'

    campaign = CampaignFactory(trigger=trigger, condition=condition)

    assert campaign.pk is not None
    env = RuleEnvironment(trigger.context_schema, {}, SCHEMA)
    assert "has(user.name)" in [function.signature for function in env.functions()]


def test_an_error_after_a_has_of_a_declared_attribute_keeps_its_position(typed, trigger):
    [message] = save_errors(trigger, 'has(user.tier) && user.age == "x"')
    [same_place] = save_errors(trigger, 'true           && user.age == "x"')

    assert message == same_place
    assert message.startswith("line 1, column 28: found no matching overload"), message


def test_the_maps_macros_and_size_compile_with_a_schema(typed, trigger):
    condition = (
        'user.exists(k, k == "vip") || user.all(k, k != "x") || user.size() > 2'
        ' || user.exists_one(k, k == "a") || user . exists (k, true)'
    )

    campaign = CampaignFactory(trigger=trigger, condition=condition)

    assert campaign.pk is not None


def test_without_a_schema_any_attribute_compiles_untyped(trigger):
    campaign = CampaignFactory(trigger=trigger, condition='user.tyer == "gold"')

    assert campaign.pk is not None


# --- changing the schema ------------------------------------------------------------------


def test_the_check_names_active_campaigns_broken_and_warns_of_drafts(typed, trigger):
    CampaignFactory(trigger=trigger, name="Gold", slug="gold", condition='user.tier == "gold"')
    CampaignFactory(
        trigger=trigger, slug="adults", status=Campaign.Status.DRAFT, condition="user.age > 18"
    )
    CampaignFactory(trigger=trigger, slug="other", condition="context.amount > 1.0")

    check = user_schema_change_check(
        partnership=typed, new_schema={"type": "object", "properties": {"level": {}}}
    )

    assert [broken.slug for broken in check.refused] == ["gold"]
    assert "user.tier is not an attribute" in check.refused[0].errors["condition"]
    assert [broken.slug for broken in check.warned] == ["adults"]


def change_partnership(client, partnership, schema):
    page = client.get(f"/pilot/partnerships/partnership/{partnership.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form.fields[name].prepare_value(form[name].value()) for name in form.fields}
    data = {name: value for name, value in data.items() if value is not None}
    data["user_attribute_schema"] = json.dumps(schema)
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return client.post(f"/pilot/partnerships/partnership/{partnership.pk}/change/", data)


def test_pilot_refuses_a_schema_that_breaks_an_active_campaign(admin_client, typed, trigger):
    CampaignFactory(trigger=trigger, name="Gold", slug="gold", condition='user.tier == "gold"')
    retyped = {"type": "object", "properties": {"tier": {"type": "integer"}}}

    response = change_partnership(admin_client, typed, retyped)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["user_attribute_schema"]
    assert any("would stop the active campaign Gold (gold)" in error for error in errors)
    typed.refresh_from_db()
    assert typed.user_attribute_schema == SCHEMA


def test_pilot_saves_a_compatible_schema_and_the_api_then_checks_it(
    admin_client, partnership, trigger, partner_client
):
    CampaignFactory(trigger=trigger, condition='user.tier == "gold"')

    response = change_partnership(admin_client, partnership, SCHEMA)

    assert response.status_code == 302, response.context["adminform"].form.errors
    partnership.refresh_from_db()
    assert partnership.user_attribute_schema == SCHEMA
    put = partner_client.put(
        f"/partnerships/{partnership.id}/users/ann", {"attributes": {"age": "x"}}, format="json"
    )
    assert put.status_code == 422
    assert put.json()["errors"][0]["field"] == "attributes.age"


def test_pilot_refuses_a_schema_that_is_not_one(admin_client, partnership):
    response = change_partnership(admin_client, partnership, {"type": "array"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user_attribute_schema"]


def test_pilots_schema_check_names_the_campaigns_a_schema_would_break(admin_client, typed, trigger):
    CampaignFactory(trigger=trigger, name="Gold", slug="gold", condition='user.tier == "gold"')
    url = f"/pilot/partnerships/partnership/{typed.pk}/schema-check/"

    renamed = {"type": "object", "properties": {"level": {"type": "string"}}}

    answer = admin_client.post(
        url, {"schema_mode": "raw", "user_attribute_schema": json.dumps(renamed)}
    ).json()

    assert any("would stop the active campaign Gold (gold)" in e for e in answer["errors"])
    assert answer["refused"] and answer["refused"][0].startswith("Gold (gold, active)")
