"""The one place that limits what a Pilot user sees: partnerships_for_operator."""

import pytest

from partnerships.models import PartnershipMember
from partnerships.selectors import partnerships_for_operator
from tests.factories import PartnershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_and_b():
    return PartnershipFactory(name="A"), PartnershipFactory(name="B")


def test_a_superuser_sees_every_partnership(django_user_model, a_and_b):
    admin = django_user_model.objects.create_superuser("root")

    assert set(partnerships_for_operator(user=admin)) == set(a_and_b)


def test_a_member_sees_only_their_partnerships(django_user_model, a_and_b):
    a, _ = a_and_b
    user = django_user_model.objects.create_user("ops", is_staff=True)
    PartnershipMember.objects.create(user=user, partnership=a)

    assert list(partnerships_for_operator(user=user)) == [a]


def test_a_user_of_no_partnership_sees_none(django_user_model, a_and_b):
    user = django_user_model.objects.create_user("new", is_staff=True)

    assert list(partnerships_for_operator(user=user)) == []


def test_an_inactive_superuser_sees_none(django_user_model, a_and_b):
    admin = django_user_model.objects.create_superuser("gone", is_active=False)

    assert list(partnerships_for_operator(user=admin)) == []


def test_members_are_managed_in_pilot(admin_client, django_user_model, a_and_b):
    a, _ = a_and_b
    user = django_user_model.objects.create_user("ops", is_staff=True)

    added = admin_client.post(
        "/pilot/partnerships/partnershipmember/add/", {"user": user.pk, "partnership": a.pk}
    )
    listed = admin_client.get("/pilot/partnerships/partnershipmember/")

    assert added.status_code == 302
    assert list(partnerships_for_operator(user=user)) == [a]
    assert "ops" in listed.content.decode()
