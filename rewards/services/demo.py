"""The demo of ``make run``: two triggers and two campaigns, and a Pilot login, created once."""

import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection

from campaigns.models import Campaign
from campaigns.services import campaign_save
from config import devstack
from partnerships.models import Partnership
from triggers.models import Trigger

TRANSACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "merchant_category": {"type": "string"},
    },
    "required": ["amount", "currency"],
}
SIGNUP_SCHEMA = {"type": "object", "properties": {"channel": {"type": "string"}}}


def demo_catalog_ensure(*, partnership: Partnership) -> None:
    purchases, _ = Trigger.objects.get_or_create(
        partnership=partnership,
        name="transaction_completed",
        defaults={"context_schema": TRANSACTION_SCHEMA, "description": "A card purchase"},
    )
    signups, _ = Trigger.objects.get_or_create(
        partnership=partnership,
        name="user_signup",
        defaults={"context_schema": SIGNUP_SCHEMA, "description": "A new user signed up"},
    )
    _ensure_campaign(
        partnership,
        slug="cashback-5",
        trigger=purchases,
        name="5% cashback up to 10 on purchases of 20 or more",
        condition="context.amount >= 20.0",
        reward_type=Campaign.RewardType.PERCENTAGE,
        reward_value=Decimal("5"),
        reward_field="amount",
        reward_max=Decimal("10"),
    )
    _ensure_campaign(
        partnership,
        slug="welcome-100",
        trigger=signups,
        name="100 points once per user",
        reward_type=Campaign.RewardType.FIXED,
        reward_value=Decimal("100"),
        max_rewards_per_user=1,
    )


def _ensure_campaign(partnership: Partnership, *, slug: str, **fields) -> None:
    if not Campaign.objects.filter(partnership=partnership, slug=slug).exists():
        campaign_save(
            campaign=Campaign(
                partnership=partnership, slug=slug, status=Campaign.Status.ACTIVE, **fields
            )
        )


DEMO_OPERATOR = "demo"


class DemoRefused(Exception):
    """The demo login was asked for outside the dev stack."""


def demo_operator_ensure(*, password: str | None) -> str:
    """The demo's Pilot login: a staff superuser named DEMO_OPERATOR whose password is
    `password`, or a newly generated one (returned) when it is None or no longer matches.

    Dev stack only: raises DemoRefused unless DEBUG is on and the database is this
    checkout's embedded PostgreSQL, so no deployment can get this account.
    """
    if reason := _devstack_refusal():
        raise DemoRefused(reason)
    model = get_user_model()
    user = model.objects.filter(username=DEMO_OPERATOR).first() or model(username=DEMO_OPERATOR)
    usable = user.pk and user.is_active and user.is_staff and user.is_superuser
    if usable and password and user.check_password(password):
        return password
    password = secrets.token_urlsafe(12)
    user.is_active = user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return password


def _devstack_refusal() -> str | None:
    if not settings.DEBUG:
        return "DEBUG is off: the demo login exists on the dev stack (make run) only"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")  # superusers only: as on the embedded server
            (data_directory,) = cursor.fetchone()
    except DatabaseError as exc:
        return f"cannot tell whether this is the dev stack's database: {exc}"
    if Path(data_directory).resolve() != devstack.PG_DATADIR.resolve():
        return (
            "the database is not this checkout's embedded PostgreSQL "
            f"({devstack.PG_DATADIR}): the demo login exists on the dev stack only"
        )
    return None
