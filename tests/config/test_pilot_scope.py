"""An operator of partnership A sees nothing of partnership B anywhere in Pilot: lists, filters'
choices, dropdowns, autocomplete, search, pages by URL, recent actions, reports. Every page of
the registry is visited, so an admin added later is held to the same."""

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse

from partnerships.models import ApiKey, Partnership, PartnershipMember
from partnerships.roles import ADMIN, SUPPORT
from partnerships.scoping import PartnershipScopedAdmin, partnership_path_for
from tests.pilot_world import World, world
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def a(django_user_model) -> World:
    return world("Alpha", django_user_model)


@pytest.fixture
def b(django_user_model) -> World:
    return world("Bravo", django_user_model)


@pytest.fixture
def operator(django_user_model, a, b):
    """An Admin (every permission) of partnership A only."""
    user = django_user_model.objects.create_user("alpha_admin", is_staff=True)
    user.groups.add(Group.objects.get(name=ADMIN))
    PartnershipMember.objects.create(user=user, partnership=a.partnership)
    return user


@pytest.fixture
def pilot(client, operator):
    client.force_login(operator)
    return client


def registered() -> list:
    return [
        pytest.param(model, id=model._meta.label) for model in sorted(admin.site._registry, key=str)
    ]


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def visible_to_a(model):
    """The rows of ``model`` that belong to partnership A (or to no partnership)."""
    path = partnership_path_for(model)
    rows = model._default_manager.all()
    if path is None:
        return rows
    return rows.filter(**{f"{path}__in": Partnership.objects.filter(name="Alpha")}).distinct()


@pytest.mark.parametrize("model", registered())
def test_every_admin_of_partnership_data_is_scoped(model):
    if partnership_path_for(model) is not None:
        assert isinstance(admin.site._registry[model], PartnershipScopedAdmin)


@pytest.mark.parametrize("model", registered())
def test_no_list_names_the_other_partnership(pilot, model):
    response = pilot.get(changelist(model))

    assert response.status_code in (200, 403)  # 403: second-factor devices, superusers only
    page = response.content.decode()
    assert "bravo" not in page.lower()
    if response.status_code == 200 and model is not Group:
        assert "alpha" in page.lower()


@pytest.mark.parametrize("model", registered())
def test_no_filter_offers_the_other_partnerships_rows(pilot, b, model):
    response = pilot.get(changelist(model))
    if response.status_code != 200:
        return

    for spec in response.context["cl"].filter_specs:
        for choice in getattr(spec, "lookup_choices", ()):
            label = choice[-1] if isinstance(choice, tuple) else choice
            assert "bravo" not in str(label).lower(), (spec.title, label)


@pytest.mark.parametrize("model", registered())
def test_search_finds_nothing_of_the_other_partnership(pilot, model):
    model_admin = admin.site._registry[model]
    if not model_admin.search_fields:
        return
    response = pilot.get(changelist(model), {"q": "bravo"})
    if response.status_code != 200:
        return

    assert not [row for row in response.context["cl"].result_list if "bravo" in str(row).lower()]
    assert response.context["cl"].result_count == 0 or model is Group


@pytest.mark.parametrize("model", registered())
def test_the_other_partnerships_pages_do_not_open_by_url(pilot, b, model):
    hidden = model._default_manager.exclude(pk__in=visible_to_a(model).values("pk"))
    info = (model._meta.app_label, model._meta.model_name)

    for row in hidden:
        for view in ("change", "history", "delete"):
            response = pilot.get(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[row.pk]))
            assert response.status_code in (302, 403, 404), (view, row)
            assert "bravo" not in response.content.decode().lower()


def test_the_other_partnerships_users_do_not_open_by_url(pilot, b):
    bravo_ops = PartnershipMember.objects.get(partnership=b.partnership).user

    response = pilot.get(reverse("admin:auth_user_change", args=[bravo_ops.pk]), follow=True)

    assert "bravo_ops" not in response.content.decode()


def test_the_other_partnerships_event_by_url_is_not_found(pilot, b):
    url = reverse("admin:triggers_triggerevent_change", args=[b.event.pk])

    response = pilot.get(url, follow=True)

    assert response.status_code == 404  # as for an id that does not exist at all
    assert str(b.end_user) not in response.content.decode()


def test_dropdowns_offer_only_the_operators_rows(pilot, a, b):
    campaign_form = pilot.get(reverse("admin:campaigns_campaign_add")).context["adminform"].form
    key_form = pilot.get(reverse("admin:partnerships_apikey_add")).context["adminform"].form

    assert list(campaign_form.fields["partnership"].queryset) == [a.partnership]
    assert list(campaign_form.fields["trigger"].queryset) == [a.trigger]
    assert list(key_form.fields["partnership"].queryset) == [a.partnership]


def test_a_forged_choice_of_the_other_partnership_is_refused(pilot, a, b):
    response = pilot.post(
        reverse("admin:partnerships_apikey_add"),
        {"partnership": b.partnership.pk, "name": "stolen", "mode": "live"},
    )

    assert "Select a valid choice" in response.content.decode()
    assert not ApiKey.objects.filter(name="stolen").exists()


def test_autocomplete_offers_only_the_operators_rows(pilot, a, b):
    def autocomplete(field: str, term: str) -> list[str]:
        response = pilot.get(
            reverse("admin:autocomplete"),
            {
                "app_label": "partnerships",
                "model_name": "partnershipmember",
                "field_name": field,
                "term": term,
            },
        )
        return [result["text"] for result in response.json()["results"]]

    assert autocomplete("partnership", "") == [str(a.partnership)]
    assert autocomplete("user", "ops") == ["alpha_ops"]


def test_recent_actions_leave_out_the_other_partnerships_rows(pilot, operator, a, b):
    for event in (a.event, b.event):  # b's: from when the operator was a member of B
        LogEntry.objects.log_actions(
            user_id=operator.pk, queryset=[event.trigger], action_flag=CHANGE, single_object=True
        )

    page = pilot.get(reverse("admin:index")).content.decode()

    assert "alpha_purchase" in page
    assert "bravo_purchase" not in page


def test_a_superuser_sees_both_partnerships(admin_client, a, b):
    page = admin_client.get(changelist(TriggerEvent)).content.decode()

    assert "alpha-user" in page and "bravo-user" in page


def test_the_reports_show_only_the_operators_partnership(pilot, a, b):
    page = pilot.get(reverse("pilot-reports-dashboard")).content.decode()
    forced = pilot.get(reverse("pilot-reports-dashboard"), {"partnership": b.partnership.pk})

    assert "Alpha" in page and "Bravo" not in page
    assert "Bravo" not in forced.content.decode()


def test_a_scoped_admin_cannot_make_anyone_a_superuser(pilot, a):
    alpha_ops = PartnershipMember.objects.get(user__username="alpha_ops").user
    page = pilot.get(reverse("admin:auth_user_change", args=[alpha_ops.pk])).content.decode()

    assert 'name="is_superuser"' not in page
    assert 'name="user_permissions"' not in page
    assert 'name="groups"' in page


# --- Users: only those wholly inside the operator's partnerships; no approver made ----------


def user_form(pilot, user, **changes) -> dict:
    """The user's page as Pilot fills it (memberships untouched), with ``changes``."""
    page = pilot.get(reverse("admin:auth_user_change", args=[user.pk]))
    data = {
        name: value
        for name, value in page.context["adminform"].form.initial.items()
        if value is not None and not isinstance(value, list | tuple) and name != "password"
    }
    members = PartnershipMember.objects.filter(user=user)
    data.update(
        {
            "is_active": "on",
            "is_staff": "on",
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "last_login_0": "",
            "last_login_1": "",
            "partnership_memberships-TOTAL_FORMS": str(members.count()),
            "partnership_memberships-INITIAL_FORMS": str(members.count()),
            "partnership_memberships-MIN_NUM_FORMS": "0",
            "partnership_memberships-MAX_NUM_FORMS": "1000",
        }
    )
    for index, member in enumerate(members):
        prefix = f"partnership_memberships-{index}-"
        data.update(
            {
                f"{prefix}id": member.pk,
                f"{prefix}user": user.pk,
                f"{prefix}partnership": member.partnership_id,
            }
        )
    data.update(changes)
    return data


def test_a_user_of_both_partnerships_is_not_the_scoped_admins_to_open_or_change(
    pilot, a, b, django_user_model
):
    both = django_user_model.objects.create_user("both_ops", password="old", is_staff=True)
    for world_ in (a, b):
        PartnershipMember.objects.create(user=both, partnership=world_.partnership)
    change = reverse("admin:auth_user_change", args=[both.pk])
    password = reverse("admin:auth_user_password_change", args=[both.pk])

    opened = pilot.get(change, follow=True)
    assert opened.redirect_chain == [("/pilot/", 302)]  # Django's answer for a hidden row
    assert "both_ops" not in opened.content.decode()
    assert pilot.get(password).status_code == 404
    posted = pilot.post(password, {"password1": "Taken0ver!x", "password2": "Taken0ver!x"})
    assert posted.status_code == 404
    assert django_user_model.objects.get(pk=both.pk).check_password("old")
    listing = pilot.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "both_ops" not in listing and "alpha_ops" in listing


def give_alpha_ops(pilot, role: str):
    """Posts alpha_ops's page with ``role`` ticked; returns the user and the response."""
    alpha_ops = PartnershipMember.objects.get(user__username="alpha_ops").user
    groups = [Group.objects.get(name=role).pk]
    url = reverse("admin:auth_user_change", args=[alpha_ops.pk])
    return alpha_ops, pilot.post(url, user_form(pilot, alpha_ops, groups=groups))


def test_a_scoped_admin_cannot_give_the_admin_role(pilot, a):
    alpha_ops, response = give_alpha_ops(pilot, ADMIN)

    assert response.status_code == 200
    assert "Only a superuser may give “Admin”" in response.content.decode()
    assert not alpha_ops.groups.exists()


def test_a_scoped_admin_gives_support_to_a_user_of_their_partnership(pilot, a):
    alpha_ops, response = give_alpha_ops(pilot, SUPPORT)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(alpha_ops.groups.values_list("name", flat=True)) == [SUPPORT]


def test_an_approver_of_the_same_partnership_is_not_the_scoped_admins_to_manage(
    pilot, a, django_user_model
):
    other_admin = django_user_model.objects.create_user("alpha_admin2", is_staff=True)
    other_admin.groups.add(Group.objects.get(name=ADMIN))
    PartnershipMember.objects.create(user=other_admin, partnership=a.partnership)

    response = pilot.get(reverse("admin:auth_user_change", args=[other_admin.pk]), follow=True)
    password = reverse("admin:auth_user_password_change", args=[other_admin.pk])

    assert "alpha_admin2" not in response.content.decode()
    assert pilot.get(password).status_code == 404
