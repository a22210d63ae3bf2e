"""Pilot's five roles (Benji's): Django groups whose permissions are written here, once.

Permissions exist only once ``post_migrate`` has run, so the groups are created and refreshed
there (``apps.PartnershipsConfig``), on every ``migrate`` (the test database's too): editing
this table and migrating is how a role changes. What an operator sees is limited separately,
by their partnerships (``selectors.partnerships_for_operator``). docs/pilot.md has the table.
"""

import functools
import operator

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

ADMIN = "Admin"
CAMPAIGN_MANAGER = "Campaign Manager"
SUPPORT = "Support"
DEVELOPER = "Developer"
READ_ONLY = "Read Only"

# The apps whose rows Read Only may see (not auth's users, the admin log or second-factor
# devices: those are Admin's).
VIEWABLE_APPS = ("partnerships", "triggers", "campaigns", "rewards")

_VIEW_PARTNERS = ("partnerships.view_partner", "partnerships.view_partnership")

# "app_label.codename"; Admin has every permission, Read Only every view_* of VIEWABLE_APPS.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    CAMPAIGN_MANAGER: (
        *_VIEW_PARTNERS,
        "partnerships.view_enduser",
        "triggers.add_trigger",
        "triggers.change_trigger",
        "triggers.view_trigger",
        "triggers.view_triggerevent",
        "triggers.send_test_event",
        "campaigns.add_campaign",
        "campaigns.change_campaign",
        "campaigns.view_campaign",
        "campaigns.view_campaignversion",
        "rewards.view_reward",
        "rewards.view_reversal",
        "rewards.view_rewardadjustment",
        "rewards.view_campaigncounter",
        "rewards.view_reports",
    ),
    SUPPORT: (
        *_VIEW_PARTNERS,
        "partnerships.view_enduser",
        "partnerships.block_enduser",
        "partnerships.view_usertoken",
        "partnerships.change_usertoken",  # revoke an app's token
        "triggers.view_trigger",
        "triggers.view_triggerevent",
        "triggers.change_triggerevent",  # retry a failed event
        "campaigns.view_campaign",
        "campaigns.view_campaignversion",
        "rewards.view_reward",
        "rewards.reverse_reward",
        "rewards.view_reversal",
        "rewards.view_rewardadjustment",
        "rewards.view_webhookdelivery",
    ),
    DEVELOPER: (
        *_VIEW_PARTNERS,
        "partnerships.add_apikey",
        "partnerships.change_apikey",  # revoke
        "partnerships.view_apikey",
        "partnerships.view_usertoken",
        "partnerships.change_usertoken",  # revoke an app's token
        "triggers.add_trigger",
        "triggers.change_trigger",
        "triggers.view_trigger",
        "triggers.view_triggerevent",
        "triggers.send_test_event",
        "campaigns.view_campaign",
        "rewards.add_webhookendpoint",
        "rewards.change_webhookendpoint",  # rotate the secret
        "rewards.view_webhookendpoint",
        "rewards.change_webhookdelivery",  # redeliver
        "rewards.view_webhookdelivery",
    ),
}

# Holders of any of these can move money (approve a campaign, reverse a reward, change a
# budget or a rule, or issue a live API key, which reverses rewards and sends live events;
# changing a key un-revokes or extends it): they sign in with a second factor
# (``second_factor``).
MONEY_PERMISSIONS = (
    "campaigns.approve_campaign",
    "rewards.reverse_reward",
    "campaigns.change_campaign",
    "partnerships.add_apikey",
    "partnerships.change_apikey",
)


def role_permissions(*, role: str):
    """The Permission rows of ``role``; a name in the table that no model declares is an error
    (a renamed permission would otherwise drop out of a role unnoticed)."""
    if role == ADMIN:
        return Permission.objects.all()
    if role == READ_ONLY:
        return Permission.objects.filter(
            Q(codename__startswith="view_", content_type__app_label__in=VIEWABLE_APPS)
            | Q(codename="view_reports", content_type__app_label="rewards")
        )
    wanted = set(ROLE_PERMISSIONS[role])
    by_name = (Q(content_type__app_label=app, codename=code) for app, code in _split(wanted))
    found = Permission.objects.filter(functools.reduce(operator.or_, by_name))
    found = found.select_related("content_type")
    missing = wanted - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"role {role!r} names unknown permissions: {sorted(missing)}")
    return found


def _split(names):
    return (name.split(".", 1) for name in names)


ROLES = (ADMIN, CAMPAIGN_MANAGER, SUPPORT, DEVELOPER, READ_ONLY)


@transaction.atomic
def roles_ensure() -> None:
    """Creates the five groups, or sets their permissions back to the table's (idempotent)."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(role_permissions(role=role))
