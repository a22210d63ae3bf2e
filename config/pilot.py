"""Pilot's look and navigation (django-unfold's UNFOLD setting): the sidebar lists the reports
first, then each app's pages, each shown only to those who may open it."""

from collections.abc import Callable

from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse_lazy


def _may_view(app: str, model: str) -> Callable[[HttpRequest], bool]:
    def check(request: HttpRequest) -> bool:
        user = request.user
        return user.has_perm(f"{app}.view_{model}") or user.has_perm(f"{app}.change_{model}")

    return check


def _page(title: str, icon: str, app: str, model: str) -> dict:
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app}_{model}_changelist"),
        "permission": _may_view(app, model),
    }


def _may_view_reports(request: HttpRequest) -> bool:
    return request.user.has_perm("rewards.view_reports")


NAVIGATION = [
    {
        "title": "Reports",
        "items": [
            {
                "title": "Dashboard",
                "icon": "monitoring",
                "link": reverse_lazy("pilot-reports-dashboard"),
                "permission": _may_view_reports,
            },
        ],
    },
    {
        "title": "Campaigns",
        "collapsible": False,
        "items": [
            _page("Campaigns", "campaign", "campaigns", "campaign"),
            {
                "title": "Dry run",
                "icon": "science",
                "link": reverse_lazy("admin:campaigns_campaign_dry_run"),
                "permission": _may_view("campaigns", "campaign"),
            },
            _page("Rewards", "redeem", "rewards", "reward"),
            _page("Reversals", "undo", "rewards", "rewardadjustment"),
        ],
    },
    {
        "title": "Triggers",
        "items": [
            _page("Triggers", "bolt", "triggers", "trigger"),
            _page("Trigger events", "event_list", "triggers", "triggerevent"),
        ],
    },
    {
        "title": "Partners",
        "items": [
            _page("Partners", "business", "partnerships", "partner"),
            _page("Partnerships", "handshake", "partnerships", "partnership"),
            _page("Members", "group", "partnerships", "partnershipmember"),
            _page("API keys", "key", "partnerships", "apikey"),
            _page("End users", "person", "partnerships", "enduser"),
        ],
    },
    {
        "title": "Webhooks",
        "items": [
            _page("Endpoints", "webhook", "rewards", "webhookendpoint"),
            _page("Deliveries", "outbox", "rewards", "webhookdelivery"),
        ],
    },
    {
        "title": "Pilot users",
        "items": [
            _page("Users", "manage_accounts", "auth", "user"),
            _page("Groups", "groups", "auth", "group"),
            _page("Audit log", "history", "partnerships", "auditentry"),
        ],
    },
]

UNFOLD = {
    "SITE_TITLE": "Pilot",
    "SITE_HEADER": "Pilot",
    "SITE_SUBHEADER": "Campaign Rewards operations",
    "SITE_SYMBOL": "flight_takeoff",
    "SHOW_VIEW_ON_SITE": False,
    "STYLES": [lambda request: static("partnerships/pilot.css")],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": NAVIGATION,
    },
}
