"""Pilot's second-factor pages, under /pilot/second-factor/ (before the admin site's own URLs)."""

from django.urls import path

from . import second_factor_views

urlpatterns = [
    path("", second_factor_views.second_factor_verify, name="pilot-second-factor"),
    path("enrol/", second_factor_views.second_factor_enrol, name="pilot-enrol"),
]
