"""Pilot's second factor: operators who can move money give a code after their password (or
enrol first); the others sign in with the password alone. Signed in here with
``client.login`` (the password step only, as the sign-in page), not ``force_login``."""

import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from partnerships.models import AuditEntry, PartnershipMember
from partnerships.roles import CAMPAIGN_MANAGER, DEVELOPER, READ_ONLY, SUPPORT
from partnerships.second_factor import recovery_codes_issue
from tests.second_factor import totp_code, totp_device
from tests.support import ROOT

pytestmark = pytest.mark.django_db

PASSWORD = "a long pilot password"
CAMPAIGNS = "/pilot/campaigns/campaign/"


@pytest.fixture
def operator(django_user_model, partnership):
    def make(role: str | None = None, *, superuser: bool = False):
        user = django_user_model.objects.create_user(
            "ops", password=PASSWORD, is_staff=True, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        PartnershipMember.objects.create(user=user, partnership=partnership)
        return user

    return make


@pytest.fixture
def no_wait(settings):
    """No pause after a wrong code (django-otp doubles it from 1 s on each failure)."""
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0


def sign_in(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def enter(client, code: str, next_url: str = CAMPAIGNS):
    return client.post(reverse("pilot-second-factor"), {"token": code, "next": next_url})


@pytest.mark.parametrize("role", [CAMPAIGN_MANAGER, SUPPORT, DEVELOPER])
def test_a_money_role_without_a_device_is_sent_to_enrol_from_every_page(client, operator, role):
    sign_in(client, operator(role))

    for page in ("/pilot/", CAMPAIGNS, reverse("pilot-reports-dashboard")):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("pilot-enrol"))


def test_a_superuser_needs_the_second_factor_too(client, operator):
    sign_in(client, operator(superuser=True))

    assert client.get("/pilot/")["Location"].startswith(reverse("pilot-enrol"))


@pytest.mark.parametrize("role", [READ_ONLY])
def test_roles_that_move_no_money_sign_in_with_the_password(client, operator, role):
    sign_in(client, operator(role))

    assert client.get("/pilot/").status_code == 200


def test_enrolling_shows_the_key_once_then_recovery_codes_once(client, operator, no_wait):
    user = operator(CAMPAIGN_MANAGER)
    sign_in(client, user)

    page = client.get(reverse("pilot-enrol"), {"next": CAMPAIGNS}).content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page).group(1)
    wrong = client.post(reverse("pilot-enrol"), {"token": "000000", "next": CAMPAIGNS})
    done = client.post(reverse("pilot-enrol"), {"token": totp_code(device), "next": CAMPAIGNS})

    assert "otpauth://totp/" in page
    assert "That code is not right" in wrong.content.decode()
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", done.content.decode())
    assert len(codes) == 10
    assert sorted(codes) == sorted(StaticToken.objects.values_list("token", flat=True))
    assert client.get(CAMPAIGNS).status_code == 200  # this session is verified
    again = client.get(reverse("pilot-enrol")).content.decode()  # no second key
    assert secret not in again and "totp-secret" not in again
    assert AuditEntry.objects.filter(action="second_factor.enrol", actor=user).exists()


def test_with_a_device_the_operator_enters_its_code_to_open_pilot(client, operator, no_wait):
    user = operator(CAMPAIGN_MANAGER)
    device = totp_device(user)
    sign_in(client, user)

    sent = client.get(CAMPAIGNS)
    refused = enter(client, "123456")
    blocked = client.get(CAMPAIGNS)
    accepted = enter(client, totp_code(device))

    assert sent["Location"].startswith(reverse("pilot-second-factor"))
    assert "That code is not right" in refused.content.decode()
    assert blocked.status_code == 302
    assert accepted.status_code == 302 and accepted["Location"] == CAMPAIGNS
    assert client.get(CAMPAIGNS).status_code == 200


def test_a_recovery_code_works_once(client, operator, no_wait):
    user = operator(SUPPORT)
    totp_device(user)
    code, *_ = recovery_codes_issue(user=user)

    sign_in(client, user)
    first = enter(client, code.upper())
    opened = client.get(CAMPAIGNS)
    client.logout()
    sign_in(client, user)
    second = enter(client, code)

    assert first.status_code == 302 and opened.status_code == 200
    assert "That code is not right" in second.content.decode()
    assert client.get(CAMPAIGNS).status_code == 302
    assert StaticToken.objects.filter(device__user=user).count() == 9


def test_after_a_wrong_code_the_next_one_waits(client, operator):
    user = operator(CAMPAIGN_MANAGER)
    device = totp_device(user)
    sign_in(client, user)

    enter(client, "123456")
    response = enter(client, totp_code(device))

    assert "Too many wrong codes: wait a moment" in response.content.decode()
    assert client.get(CAMPAIGNS).status_code == 302


def test_the_code_page_does_not_send_an_operator_to_another_site(client, operator):
    user = operator(CAMPAIGN_MANAGER)
    device = totp_device(user)
    sign_in(client, user)

    response = enter(client, totp_code(device), next_url="https://evil.example/")

    assert response["Location"] == reverse("admin:index")


def test_the_demo_login_named_by_the_dev_stack_skips_it(client, operator, settings):
    settings.PILOT_SECOND_FACTOR_EXEMPT_USERNAMES = ["ops"]
    sign_in(client, operator(superuser=True))

    assert client.get("/pilot/").status_code == 200


@pytest.mark.parametrize(("https", "expected"), [("false", "['demo']"), ("true", "[]")])
def test_only_the_dev_stack_without_https_names_an_exempt_login(https, expected):
    env = {**os.environ, "DEVSTACK_DEMO_LOGIN": "demo", "HTTPS": https}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.PILOT_SECOND_FACTOR_EXEMPT_USERNAMES)"
    )
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout

    assert output.strip() == expected
