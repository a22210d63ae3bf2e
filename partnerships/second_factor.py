"""Pilot's second factor (django-otp): who needs one, enrolling a TOTP device with recovery
codes, and checking a code. The pages and the gate in front of Pilot:
``partnerships.second_factor_views``.

Operators who can move money (``roles.MONEY_PERMISSIONS``; superusers hold them all) enter a
code after their password; others sign in with the password alone.
"""

from django.conf import settings
from django.db import transaction
from django_otp import devices_for_user, verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .roles import MONEY_PERMISSIONS
from .services import audit_record

RECOVERY_CODES = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


def needs_second_factor(*, user) -> bool:
    """Holders of a permission that moves money; the demo login of `make run` is let through
    (``PILOT_SECOND_FACTOR_EXEMPT_USERNAMES``: set by the dev stack only, empty with HTTPS)."""
    if user.get_username() in settings.PILOT_SECOND_FACTOR_EXEMPT_USERNAMES:
        return False
    return any(user.has_perm(permission) for permission in MONEY_PERMISSIONS)


def has_totp_device(*, user) -> bool:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


@transaction.atomic
def totp_device_start(*, user) -> TOTPDevice:
    """A new, unconfirmed device whose secret the operator adds to their app; earlier
    unconfirmed ones are dropped (their secrets were shown, never proven)."""
    TOTPDevice.objects.devices_for_user(user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)


@transaction.atomic
def totp_device_confirm(*, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirms the device if ``token`` is its current code, and issues fresh recovery codes
    (returned, shown once); None when the code is wrong."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
    if not device.verify_token(_normalized(token)):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = recovery_codes_issue(user=device.user)
    audit_record(actor=device.user, action="second_factor.enrol", target=device.user)
    return codes


def recovery_codes_issue(*, user) -> list[str]:
    """New single-use recovery codes, replacing any left: returned once, stored as issued
    (django-otp's static tokens)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def second_factor_check(*, user, token: str):
    """The device that accepts ``token`` (a 6-digit app code, or a recovery code, which is used
    up), or None. Each is tried against its own kind of device only, so a typo in one never
    counts as a failed attempt (throttling) against the other."""
    token = _normalized(token)
    kind = TOTPDevice if token.isdigit() else StaticDevice
    for device in devices_for_user(user):
        if isinstance(device, kind):
            verified = verify_token(user, device.persistent_id, token)
            if verified is not None:
                return verified
    return None


def second_factor_throttled(*, user) -> bool:
    """Whether too many wrong codes have made every device wait (django-otp's throttling)."""
    devices = list(devices_for_user(user))
    return bool(devices) and not any(device.verify_is_allowed()[0] for device in devices)


def recovery_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _normalized(token: str) -> str:
    return "".join(token.split()).lower()
