"""Pilot's CSV downloads of reward and reversal rows: admin views (Pilot's login), the report
permission, and only the partnerships ``partnerships_for_operator`` gives the user."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from rest_framework import serializers

from config.csv_output import streaming_csv_response
from config.errors import ApplicationError
from partnerships.selectors import partnerships_for_operator

from .exports import ExportKind, RowFilter, csv_export_start
from .filters import report_scope_for
from .serializers import ReportRangeSerializer

PERMISSION = "rewards.view_reports"


class PilotExportSerializer(ReportRangeSerializer):
    partnership = serializers.UUIDField()
    mode = serializers.ChoiceField(choices=["live", "test"], default="live")


def _refusal(status: int, message: str, errors: list[str] = ()) -> HttpResponse:
    text = "\n".join([message, *errors]) + "\n"
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _export(request: HttpRequest, kind: ExportKind) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    given = PilotExportSerializer(data=request.GET.dict())
    if not given.is_valid():
        problems = [f"{field}: {' '.join(map(str, why))}" for field, why in given.errors.items()]
        return _refusal(400, "This export's filters are not valid.", problems)
    params = given.validated_data
    partnership = partnerships_for_operator(user=request.user).filter(pk=params["partnership"])
    partnership = partnership.first()
    if partnership is None:  # unknown, or not one of the user's: the same answer
        raise Http404
    try:
        scope = report_scope_for(
            partnership=partnership,
            mode=params["mode"],
            first_day=params["from"],
            last_day=params["to"],
            campaign=params.get("campaign"),
            trigger=params.get("trigger"),
        )
    except ApplicationError as error:
        problems = [f"{item['field']}: {item['message']}" for item in error.errors or ()]
        return _refusal(error.status, error.message, problems)
    export = csv_export_start(kind=kind, rows=RowFilter.of_scope(scope))
    name = f"{kind}-{partnership.id}-{scope.mode}-{scope.first_day}-{scope.last_day}.csv"
    return streaming_csv_response(export.lines(), filename=name, as_of=export.as_of)


def rewards_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, ExportKind.REWARDS)


def reversals_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, ExportKind.REVERSALS)


# Under Pilot's prefix (config/urls.py), through the admin site: its login and staff check.
urlpatterns = [
    path(
        "reports/rewards.csv", admin.site.admin_view(rewards_csv), name="pilot-reports-rewards-csv"
    ),
    path(
        "reports/reversals.csv",
        admin.site.admin_view(reversals_csv),
        name="pilot-reports-reversals-csv",
    ),
]
