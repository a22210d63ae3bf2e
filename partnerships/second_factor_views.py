"""The gate in front of Pilot and its two pages: enter a code, or enrol an authenticator app.

After the password (the admin site's login), an operator who needs a second factor
(``second_factor.needs_second_factor``) reaches no Pilot page until this session is verified
by django-otp: with their app's code or a recovery code, or by enrolling first.
"""

import base64
import functools

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .second_factor import (
    has_totp_device,
    needs_second_factor,
    recovery_codes_left,
    second_factor_check,
    second_factor_throttled,
    totp_device_confirm,
    totp_device_start,
)

_ENROLLING = "pilot_enrolling_device"


class SecondFactorMiddleware:
    """Sends an operator who needs a second factor and has not given it in this session to
    enter one (or to enrol), from every Pilot page: the admin site and the pages under it.
    After django-otp's OTPMiddleware (it says whether the session is verified)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._must_verify(request):
            page = "pilot-second-factor" if has_totp_device(user=request.user) else "pilot-enrol"
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse(page)}?{query}")
        return self.get_response(request)

    @staticmethod
    def _must_verify(request: HttpRequest) -> bool:
        pilot, open_paths, second_factor = _pilot_paths()
        if not request.path.startswith(pilot):  # the API: not a look at the session
            return False
        user = request.user
        if not (user.is_authenticated and user.is_staff) or user.is_verified():
            return False
        if request.path in open_paths or request.path.startswith(second_factor):
            return False
        return needs_second_factor(user=user)


@functools.cache
def _pilot_paths() -> tuple[str, tuple[str, str], str]:
    """Pilot's prefix, the pages open before the second factor, and its own pages' prefix."""
    return (
        reverse("admin:index"),
        (reverse("admin:login"), reverse("admin:logout")),
        reverse("pilot-second-factor"),
    )


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code of your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


@staff_member_required
def second_factor_verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_verified():
        return _onwards(request)
    if not has_totp_device(user=user):
        return redirect(f"{reverse('pilot-enrol')}?{urlencode({'next': _next(request)})}")
    form = TokenForm(request.POST or None)
    if form.is_valid():
        device = second_factor_check(user=user, token=form.cleaned_data["token"])
        if device is not None:
            request.session.cycle_key()
            otp_login(request, device)
            if not isinstance(device, TOTPDevice):
                left = recovery_codes_left(user=user)
                messages.warning(
                    request, f"Recovery code used: {left} left. Sign in with your app next time."
                )
            return _onwards(request)
        form.add_error("token", _refusal(user))
    return _page(request, "verify.html", {"title": "Second factor", "form": form})


@staff_member_required
def second_factor_enrol(request: HttpRequest) -> HttpResponse:
    """Once per operator: a secret for their app (shown on this page only), proven with a code,
    then recovery codes, shown once. A lost phone: a superuser deletes the device in Pilot."""
    user = request.user
    if has_totp_device(user=user):
        return redirect(f"{reverse('pilot-second-factor')}?{urlencode({'next': _next(request)})}")
    device = TOTPDevice.objects.filter(
        pk=request.session.get(_ENROLLING), user=user, confirmed=False
    ).first()
    form = TokenForm(request.POST or None)
    if request.method == "POST" and device is not None and form.is_valid():
        codes = totp_device_confirm(device=device, token=form.cleaned_data["token"])
        if codes is not None:
            del request.session[_ENROLLING]
            request.session.cycle_key()
            otp_login(request, device)
            context = {"title": "Recovery codes", "codes": codes, "next": _next(request)}
            return _page(request, "recovery_codes.html", context)
        form.add_error("token", _refusal(user))
    if device is None or request.method == "GET":
        device = totp_device_start(user=user)
        request.session[_ENROLLING] = device.pk
        form = TokenForm()
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "title": "Set up your second factor",
        "form": form,
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "config_url": device.config_url,
    }
    return _page(request, "enrol.html", context)


def _refusal(user) -> str:
    if second_factor_throttled(user=user):
        return "Too many wrong codes: wait a moment, then try again."
    return "That code is not right (or was already used). Try the current one."


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else reverse("admin:index")


def _onwards(request: HttpRequest) -> HttpResponse:
    return redirect(_next(request))


def _page(request: HttpRequest, template: str, context: dict) -> TemplateResponse:
    context = {**admin.site.each_context(request), "next": _next(request), **context}
    return TemplateResponse(request, f"partnerships/second_factor/{template}", context)
