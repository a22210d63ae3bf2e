from django.urls import path

from .apis import LiabilityApi, ReversalExportApi, RewardExportApi, RewardReportApi

REPORTS = "partnerships/<str:partnership_id>/reports"

urlpatterns = [
    path(f"{REPORTS}/rewards", RewardReportApi.as_view(), name="report-rewards"),
    path(f"{REPORTS}/rewards/export", RewardExportApi.as_view(), name="report-rewards-export"),
    path(
        f"{REPORTS}/reversals/export", ReversalExportApi.as_view(), name="report-reversals-export"
    ),
    path(f"{REPORTS}/liability", LiabilityApi.as_view(), name="report-liability"),
]
