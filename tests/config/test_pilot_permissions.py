"""Every Pilot action names the permission it needs, so a viewer is offered none. (The pages
themselves are asserted per action: tests/partnerships/test_pilot.py, tests/rewards/webhooks/.)"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import RequestFactory


def custom_actions() -> list:
    """(model, action name) of every action of every model registered in Pilot."""
    return [
        pytest.param(model, model_admin.get_action(action)[1], id=f"{model._meta.label}.{action}")
        for model, model_admin in admin.site._registry.items()
        for action in model_admin.actions or ()
    ]


def offered(user, model) -> set[str]:
    request = RequestFactory().get("/pilot/")
    request.user = user
    return set(admin.site._registry[model].get_actions(request))


@pytest.mark.parametrize(("model", "name"), custom_actions())
def test_the_action_declares_its_permission(model, name):
    function, _, _ = admin.site._registry[model].get_action(name)

    assert function.allowed_permissions


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "name"), custom_actions())
def test_the_action_is_offered_to_an_operator_not_to_a_viewer(django_user_model, model, name):
    operator = django_user_model.objects.create_superuser("operator")
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))

    assert name in offered(operator, model)
    assert name not in offered(viewer, model)
