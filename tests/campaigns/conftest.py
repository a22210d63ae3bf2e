import pytest
from django.contrib.auth.models import Group, Permission

from partnerships.models import PartnershipMember
from tests.factories import CampaignFactory

# The roles' permissions as the approval rules read them (the groups themselves are created
# by the roles' migration; these fixtures add what the tests rely on).
MANAGER_PERMISSIONS = ("view_campaign", "add_campaign", "change_campaign")
ADMIN_PERMISSIONS = (*MANAGER_PERMISSIONS, "approve_campaign")


def _member(django_user_model, partnership, username: str, group: str, codenames: tuple):
    """A staff user of ``partnership`` in the role ``group``."""
    role, _ = Group.objects.get_or_create(name=group)
    role.permissions.add(
        *Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames)
    )
    user = django_user_model.objects.create_user(username, is_staff=True)
    user.groups.add(role)
    PartnershipMember.objects.create(user=user, partnership=partnership)
    return user


@pytest.fixture
def manager(partnership, django_user_model):
    """A Campaign Manager: edits and submits, cannot approve."""
    role = ("Campaign Manager", MANAGER_PERMISSIONS)
    return _member(django_user_model, partnership, "manager", *role)


@pytest.fixture
def approver(partnership, django_user_model):
    """An Admin: may approve campaigns."""
    return _member(django_user_model, partnership, "alice", "Admin", ADMIN_PERMISSIONS)


@pytest.fixture
def second_approver(partnership, django_user_model):
    return _member(django_user_model, partnership, "bob", "Admin", ADMIN_PERMISSIONS)


@pytest.fixture
def live_campaign(trigger):
    """An approved, running campaign (factories create approved campaigns directly)."""
    return CampaignFactory(
        trigger=trigger, slug="cashback", condition="context.amount >= 20.0", budget=100
    )
