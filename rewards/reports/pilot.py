"""Pilot's report pages: admin views under the admin site (its login, navigation and look).

Every page and export asks ``partnerships_for_operator`` what the user may see and needs the
``rewards.view_reports`` permission (403 without it). Numbers come from
``rewards.reports.selectors`` only; the rows behind them (top users, reversals) from
``rewards.selectors``. The tables and the daily CSV are rendered from the same rows
(``rewards.reports.pilot_tables``), so the CSV is the page's table.
"""

import contextlib
import csv
import functools
import uuid
from datetime import timedelta

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from campaigns.models import Campaign
from config.errors import ApplicationError
from partnerships.selectors import partnerships_for_operator

from . import pilot_tables as tables
from .pilot_filters import ReportFilterForm, local_today
from .selectors import (
    campaign_budget_state,
    campaigns_ending_soon,
    campaigns_low_on_budget,
    report_campaigns,
    report_days,
    report_scope,
    report_totals,
)

REPORT_PERMISSION = "rewards.view_reports"


def can_view_reports(request: HttpRequest) -> bool:
    return request.user.has_perm(REPORT_PERMISSION)


def reports_view(view):
    """Pilot's login (staff only), then the report permission: a 403 page without it."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_view_reports(request):
            return TemplateResponse(
                request,
                "rewards/reports/forbidden.html",
                {**admin.site.each_context(request), "title": "Reports"},
                status=403,
            )
        return view(request, *args, **kwargs)

    return admin.site.admin_view(guarded)


def _page(request: HttpRequest, template: str, context: dict, status: int = 200):
    context = {**admin.site.each_context(request), **context}
    return TemplateResponse(request, f"rewards/reports/{template}", context, status=status)


def _filters(request: HttpRequest, query) -> tuple[ReportFilterForm, bool]:
    partnerships = partnerships_for_operator(user=request.user)
    form = ReportFilterForm(query, partnerships=partnerships)
    return form, partnerships.exists()


def dashboard(request: HttpRequest) -> HttpResponse:
    form, member = _filters(request, request.GET)
    context = {"title": "Reports", "form": form, "member": member}
    if not member or not form.is_valid():
        return _page(request, "dashboard.html", context, status=200 if not member else 400)
    scope = form.scope
    partnerships = [scope.partnership]
    context.update(
        _report(form),
        campaigns=[
            tables.campaign_row(scope=scope, row=row, query=form.query)
            for row in report_campaigns(scope=scope)
        ],
        low_on_budget=[
            tables.budget_view(scope=scope, state=state)
            for state in campaigns_low_on_budget(partnerships=partnerships, mode=scope.mode)
        ],
        ending_soon=campaigns_ending_soon(partnerships=partnerships),
        campaign_url=_campaign_url(form),
    )
    return _page(request, "dashboard.html", context)


def campaign_report(request: HttpRequest, campaign_id: uuid.UUID) -> HttpResponse:
    campaign = _campaign_or_404(request, campaign_id)
    form, _ = _filters(request, _campaign_query(request, campaign))
    context = {"title": f"Report: {campaign.name}", "form": form, "campaign": campaign}
    if not form.is_valid():
        return _page(request, "campaign.html", context, status=400)
    context.update(_report(form))
    scope, days = form.scope, context["days"]
    budget = campaign_budget_state(campaign=campaign, mode=scope.mode)
    context.update(
        budget=tables.budget_view(scope=scope, state=budget),
        burn_down=tables.burn_down(scope=scope, state=budget, days=days, later=_net_after(scope)),
        top_users=tables.top_users(scope=scope),
        reversals=tables.reversals(scope=scope),
    )
    return _page(request, "campaign.html", context)


def _report(form: ReportFilterForm) -> dict:
    """What both pages show of their scope: totals, outcomes, the daily table and chart."""
    scope = form.scope
    totals = report_totals(scope=scope)
    days = report_days(scope=scope)
    return {
        "scope": scope,
        "days": days,
        "totals": tables.totals_view(scope=scope, totals=totals),
        "outcomes": tables.outcome_rows(totals.decisions),
        "daily": tables.daily_table(scope=scope, days=days),
        "chart": tables.daily_chart(days=days),
        "chart_options": tables.CHART_OPTIONS,
        "csv_query": form.query(),
        "row_exports": _row_exports(form),
    }


def daily_csv(request: HttpRequest) -> HttpResponse:
    """The daily table of the page with these filters, as CSV."""
    form, member = _filters(request, request.GET)
    if not member or not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
        return HttpResponse(
            errors or "You are not a member of any partnership.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    scope = form.scope
    table = tables.daily_table(scope=scope, days=report_days(scope=scope))
    name = f"daily-{scope.mode}-{scope.first_day}-{scope.last_day}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(table.csv_header)
    writer.writerows(table.csv_rows)
    return response


def _campaign_or_404(request: HttpRequest, campaign_id: uuid.UUID) -> Campaign:
    campaign = (
        Campaign.objects.filter(
            pk=campaign_id, partnership__in=partnerships_for_operator(user=request.user)
        )
        .select_related("partnership", "trigger")
        .first()
    )
    if campaign is None:
        raise Http404("No such campaign among your partnerships")
    return campaign


def _campaign_query(request: HttpRequest, campaign: Campaign):
    """The page's filters: the campaign (and its partnership) from the URL, the rest asked."""
    query = request.GET.copy()
    query["partnership"] = str(campaign.partnership_id)
    query["campaign"] = str(campaign.pk)
    query.pop("trigger", None)
    return query


def _net_after(scope) -> dict[str, object] | None:
    """Per unit, what the scope's campaigns netted after its last day up to now (for the
    burn-down: the budget left at the end of each day); None when that is over a year."""
    today = local_today(scope.partnership)
    if scope.last_day >= today:
        return {}
    try:
        tail = report_scope(
            partnership=scope.partnership,
            mode=scope.mode,
            first_day=scope.last_day + timedelta(days=1),
            last_day=today,
            campaign_ids=scope.campaign_ids,
        )
    except ApplicationError:
        return None
    return tables.net_by_unit(report_days(scope=tail))


def _campaign_url(form: ReportFilterForm) -> str | None:
    """The report of the campaign the dashboard is filtered on, with the same range and mode."""
    campaign = form.cleaned_data["campaign"]
    if campaign is None:
        return None
    url = reverse("pilot-reports-campaign", args=[campaign.pk])
    return f"{url}?{form.query(partnership='', campaign='', trigger='')}"


# The exports of rows, built apart (the reports API's branch): linked when they are installed.
ROW_EXPORTS = (
    ("pilot-reports-rewards-csv", "Download the rewards (CSV)"),
    ("pilot-reports-reversals-csv", "Download the reversals (CSV)"),
)


def _row_exports(form: ReportFilterForm) -> list[tuple[str, str]]:
    """(label, URL) of each export of the rows behind the page, with the page's filters."""
    links = []
    for name, label in ROW_EXPORTS:
        with contextlib.suppress(NoReverseMatch):
            links.append((label, f"{reverse(name)}?{form.query()}"))
    return links
