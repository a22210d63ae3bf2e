"""Management API tests: Pilot users in a role, their staff tokens, clients that send them."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from partnerships import roles
from partnerships.models import PartnershipMember
from partnerships.staff_tokens import staff_token_create

BASE = "/management/v1"


def operator(django_user_model, name: str, role: str, *partnerships, superuser=False):
    """A Pilot user with ``role``, a member of ``partnerships``."""
    user = django_user_model.objects.create_user(name, is_staff=True, is_superuser=superuser)
    user.groups.add(Group.objects.get(name=role))
    for partnership in partnerships:
        PartnershipMember.objects.create(user=user, partnership=partnership)
    return user


def staff_client(user, role: str, partnership=None, **kwargs) -> APIClient:
    """A client sending a new staff token of ``user`` (``.token``, ``.plaintext``)."""
    issued = staff_token_create(
        creator=user, name=f"{role} token", role=role, partnership=partnership, **kwargs
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    client.token, client.plaintext = issued.token, issued.plaintext
    return client


def url(partnership, *parts) -> str:
    return "/".join([f"{BASE}/partnerships/{partnership.pk}", *map(str, parts)])


@pytest.fixture
def admin_user(django_user_model, partnership):
    return operator(django_user_model, "admin", roles.ADMIN, partnership)


@pytest.fixture
def admin_api(admin_user, partnership):
    """An Admin token scoped to the test's partnership."""
    return staff_client(admin_user, roles.ADMIN, partnership)
