"""Pilot's five roles: the groups migrate creates, and what each may do in Pilot. Read Only is
checked against every page and action of the registry (an admin added later is held to it)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.forms import BaseForm
from django.test import RequestFactory
from django.urls import reverse

from campaigns.models import Campaign
from partnerships.models import PartnershipMember
from partnerships.roles import (
    ADMIN,
    CAMPAIGN_MANAGER,
    DEVELOPER,
    MONEY_PERMISSIONS,
    READ_ONLY,
    ROLE_PERMISSIONS,
    ROLES,
    SUPPORT,
    roles_ensure,
)
from tests.factories import CampaignFactory
from tests.pilot_world import world

pytestmark = pytest.mark.django_db


def member(django_user_model, role: str, partnership, name: str = "operator"):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    PartnershipMember.objects.create(user=user, partnership=partnership)
    return django_user_model.objects.get(pk=user.pk)  # fresh permission cache


def perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_migrate_created_the_five_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def test_admin_holds_every_permission_including_approval_reversal_and_users():
    assert {
        "campaigns.approve_campaign",
        "rewards.reverse_reward",
        "auth.change_user",
        "auth.add_user",
        "partnerships.add_partnershipmember",
    } <= perms(ADMIN)


def test_a_campaign_manager_edits_campaigns_and_triggers_but_cannot_approve():
    held = perms(CAMPAIGN_MANAGER)

    assert {"campaigns.change_campaign", "triggers.change_trigger", "rewards.view_reports"} <= held
    assert "campaigns.approve_campaign" not in held
    assert "rewards.reverse_reward" not in held


def test_support_reverses_blocks_and_retries_but_changes_no_campaign():
    held = perms(SUPPORT)

    assert {
        "rewards.reverse_reward",
        "partnerships.block_enduser",
        "triggers.change_triggerevent",
    } <= held
    assert not {"campaigns.change_campaign", "campaigns.add_campaign"} & held


def test_a_developer_manages_keys_webhooks_and_test_events_but_no_campaign_money():
    held = perms(DEVELOPER)

    assert {
        "partnerships.add_apikey",
        "rewards.change_webhookendpoint",
        "triggers.send_test_event",
        "triggers.view_triggerevent",
    } <= held
    assert (
        not {
            "campaigns.change_campaign",
            "campaigns.approve_campaign",
            "rewards.reverse_reward",
        }
        & held
    )


def test_keys_count_as_money_the_developer_signs_in_with_a_second_factor():
    """A live key reverses rewards and sends live events; changing one can un-revoke it."""
    assert {"partnerships.add_apikey", "partnerships.change_apikey"} <= set(MONEY_PERMISSIONS)
    assert set(MONEY_PERMISSIONS) & perms(DEVELOPER)
    assert not set(MONEY_PERMISSIONS) & perms(READ_ONLY)


def test_read_only_holds_only_views_and_reports():
    held = perms(READ_ONLY)

    assert "rewards.view_reports" in held and "triggers.view_triggerevent" in held
    assert all(name.split(".")[1].startswith("view_") for name in held)


def test_a_role_edited_by_hand_is_set_back_by_the_next_migrate():
    support = Group.objects.get(name=SUPPORT)
    support.permissions.clear()

    roles_ensure()
    roles_ensure()

    assert "rewards.reverse_reward" in perms(SUPPORT)
    assert Group.objects.filter(name=SUPPORT).count() == 1


# --- Read Only changes nothing, on every page of the registry ---------------------------------


@pytest.fixture
def read_only(client, django_user_model):
    """A Read Only member of a partnership with a row of every kind."""
    user = member(django_user_model, READ_ONLY, world("Alpha", django_user_model).partnership)
    client.force_login(user)
    return client, user


def registered() -> list:
    return [
        pytest.param(model, id=model._meta.label) for model in sorted(admin.site._registry, key=str)
    ]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def a_row(model, user):
    request = RequestFactory().get("/pilot/")
    request.user = user
    return admin.site._registry[model].get_queryset(request).first()


@pytest.mark.parametrize("model", registered())
def test_read_only_is_refused_every_add_change_and_delete(read_only, model):
    client, user = read_only

    assert client.get(url(model, "add")).status_code == 403
    assert client.post(url(model, "add"), {}).status_code == 403
    row = a_row(model, user)
    if row is not None:
        before = model._default_manager.filter(pk=row.pk).values().get()
        assert client.post(url(model, "change", row.pk), {}).status_code == 403
        assert client.post(url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
        assert model._default_manager.filter(pk=row.pk).values().get() == before


@pytest.mark.parametrize("model", registered())
def test_read_only_is_offered_no_action_and_cannot_post_one(read_only, model):
    client, user = read_only
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/pilot/")
    request.user = user
    row = a_row(model, user)

    assert model_admin.get_actions(request) == {}
    for name in [*(model_admin.actions or ()), "delete_selected"]:
        if row is None:
            continue
        before = model._default_manager.filter(pk=row.pk).values().get()
        response = client.post(
            url(model, "changelist"), {"action": name, "_selected_action": [row.pk]}, follow=True
        )
        assert model._default_manager.filter(pk=row.pk).values().get() == before
        assert response.status_code in (200, 403)


def row_counts() -> dict:
    """Rows of every model, registered in Pilot or not (a backtest run, a queued job's row)."""
    return {model: model._default_manager.count() for model in apps.get_models()}


def filled(response) -> dict:
    """What the page's form would post as shown (its initial values), or nothing."""
    form = response.context.get("form") if response.context else None
    if not isinstance(form, BaseForm):
        return {}
    values = ((field.name, field.value()) for field in form)
    return {name: value for name, value in values if value is not None}


def buttons(model_admin) -> list[str]:
    """Unfold's detail and row actions of ``model_admin`` (not every admin is unfold's)."""
    detail, row = (
        getattr(model_admin, name, None) or () for name in ("actions_detail", "actions_row")
    )
    return [*detail, *row]


@pytest.mark.parametrize(
    "model", [m for m in registered() if buttons(admin.site._registry[m.values[0]])]
)
def test_read_only_cannot_post_a_detail_or_row_action(read_only, model):
    """The pages' own buttons (unfold's detail and row actions: approve, backtest, send a test
    event...), posted with the form they show filled in, write no row anywhere."""
    client, user = read_only
    model_admin = admin.site._registry[model]
    row = a_row(model, user)
    assert row is not None
    for name in buttons(model_admin):
        action_url = url(model, name, row.pk)
        shown = client.get(action_url)
        before, counts = model._default_manager.filter(pk=row.pk).values().get(), row_counts()
        response = client.post(action_url, filled(shown))
        assert response.status_code in (302, 403, 404), (name, response.status_code)
        assert row_counts() == counts, name
        assert model._default_manager.filter(pk=row.pk).values().get() == before, name


def test_read_only_sees_the_lists_and_the_reports(read_only):
    client, _ = read_only

    assert client.get(url(Campaign, "changelist")).status_code == 200
    assert client.get(reverse("pilot-reports-dashboard")).status_code == 200


# --- Support and Campaign Manager -------------------------------------------------------------


def test_support_may_reverse_and_is_refused_the_campaign_pages(client, django_user_model):
    campaign = CampaignFactory(name="Cashback")
    user = member(django_user_model, SUPPORT, campaign.partnership)
    client.force_login(user)

    changed = client.post(url(Campaign, "change", campaign.pk), {"name": "Renamed"})
    added = client.get(url(Campaign, "add"))
    seen = client.get(url(Campaign, "change", campaign.pk))

    assert user.has_perm("rewards.reverse_reward")
    assert changed.status_code == 403 and added.status_code == 403
    assert seen.status_code == 200 and 'name="name"' not in seen.content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Cashback"


def test_a_campaign_manager_opens_the_campaign_form_but_lacks_approval(client, django_user_model):
    campaign = CampaignFactory()
    user = member(django_user_model, CAMPAIGN_MANAGER, campaign.partnership)
    client.force_login(user)

    page = client.get(url(Campaign, "change", campaign.pk))

    assert page.status_code == 200 and 'name="name"' in page.content.decode()
    assert not user.has_perm("campaigns.approve_campaign")


def test_a_role_naming_an_unknown_permission_fails_loudly(monkeypatch):
    monkeypatch.setitem(ROLE_PERMISSIONS, SUPPORT, ("rewards.reverse_rewards",))

    with pytest.raises(LookupError, match="reverse_rewards"):
        roles_ensure()
