"""Pilot's report pages, under /pilot/reports/ (the admin site's login, look and navigation)."""

from django.urls import path

from . import pilot, pilot_exports
from .pilot import reports_view

urlpatterns = [
    path("", reports_view(pilot.dashboard), name="pilot-reports-dashboard"),
    path(
        "campaigns/<uuid:campaign_id>/",
        reports_view(pilot.campaign_report),
        name="pilot-reports-campaign",
    ),
    path("daily.csv", reports_view(pilot.daily_csv), name="pilot-reports-daily-csv"),
    # The rows behind the figures, streamed.
    path("rewards.csv", reports_view(pilot_exports.rewards_csv), name="pilot-reports-rewards-csv"),
    path(
        "reversals.csv",
        reports_view(pilot_exports.reversals_csv),
        name="pilot-reports-reversals-csv",
    ),
]
