"""Pilot's second factor in tests: a session verified through django-otp's own login, and the
codes of a real TOTP device (what an authenticator app would show); and the browser tests'
sign-in through those pages, with the builder's typing that follows it."""

from django.http import HttpRequest
from django.test import Client
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice


def verify_session(client: Client, user) -> None:
    """Marks the client's signed-in session as having given its second factor, with a device of
    the user's (as the sign-in page does once the code is right)."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="tests")
    request = HttpRequest()
    request.session, request.user = client.session, user
    otp_login(request, device)
    request.session.save()


def totp_device(user) -> TOTPDevice:
    """A confirmed authenticator app of the user's."""
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def totp_code(device: TOTPDevice) -> str:
    """The code the device's app shows now."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def browser_sign_in(
    page, base_url: str, *, username: str, password: str, next_path: str, device=None
):
    """Signs in through Pilot's pages in a real browser: the password, then, with a ``device``
    (a money role's), the code its app shows; waits until ``next_path`` is open."""
    page.goto(f"{base_url}/pilot/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    if device is not None:
        page.wait_for_url("**/pilot/second-factor/**")
        page.fill("#id_token", totp_code(device))
        page.locator("#second-factor-form button[type=submit]").click()
    page.wait_for_url(f"**{next_path}")


def browser_type_condition(page, condition: str) -> None:
    """Types a campaign's condition in the builder as an operator would: once the panel lists
    the trigger's ``context.amount`` (the check its choice fired has settled) and the Rule tab
    shows the field (keys go where the focus is)."""
    amount_type = page.locator('[data-term="context.amount"] [data-term-type]')
    assert amount_type.inner_text() == "double"
    page.locator("#id_condition").wait_for(state="visible")
    page.locator("#id_condition").press_sequentially(condition)
    assert page.input_value("#id_condition") == condition
