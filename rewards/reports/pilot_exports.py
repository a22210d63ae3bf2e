"""Pilot's downloads of the rows behind a report (rewards, reversals) as streamed CSV: the
report page's filters (``ReportFilterForm``: only the partnerships ``partnerships_for_operator``
gives the user), under its login and report permission (``pilot_urls`` wraps them)."""

from django.http import HttpRequest, HttpResponse

from config.csv_output import streaming_csv_response
from partnerships.selectors import partnerships_for_operator

from .exports import ExportKind, RowFilter, csv_export_start
from .pilot_filters import ReportFilterForm


def _export(request: HttpRequest, kind: ExportKind) -> HttpResponse:
    partnerships = partnerships_for_operator(user=request.user)
    form = ReportFilterForm(request.GET, partnerships=partnerships)
    if not form.is_valid():
        problems = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
        return HttpResponse(
            "\n".join(["These filters cannot be exported:", *problems]) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    scope = form.scope
    export = csv_export_start(kind=kind, rows=RowFilter.of_scope(scope))
    name = f"{kind}-{scope.partnership.pk}-{scope.mode}-{scope.first_day}-{scope.last_day}.csv"
    return streaming_csv_response(export.lines(), filename=name, as_of=export.as_of)


def rewards_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, ExportKind.REWARDS)


def reversals_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, ExportKind.REVERSALS)
