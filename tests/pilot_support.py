"""Pilot operators for tests: staff users with chosen permissions, members of chosen
partnerships, logged in on their own test client."""

from django.contrib.auth.models import Permission
from django.test import Client

from partnerships.models import PartnershipMember

# What support needs to look at events, users and rewards.
VIEW = (
    "triggers.view_triggerevent",
    "partnerships.view_enduser",
    "rewards.view_reward",
    "rewards.view_rewardadjustment",
)


def pilot_operator(django_user_model, name: str, *, partnerships=(), perms=VIEW) -> Client:
    user = django_user_model.objects.create_user(name, is_staff=True)
    for partnership in partnerships:
        PartnershipMember.objects.create(user=user, partnership=partnership)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def page_text(response) -> str:
    return response.content.decode()


def change_form_data(page) -> dict:
    """What a change page's form posts back when saved untouched: each of its fields' values
    as the page loaded them (JSON as its text, a related row as its key)."""
    form = page.context["adminform"].form
    values = {name: form[name].value() for name in form.fields}
    return {name: value for name, value in values.items() if value is not None}
