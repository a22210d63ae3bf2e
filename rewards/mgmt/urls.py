from django.urls import path

from . import simulations, webhooks

PARTNERSHIP = "partnerships/<uuid:partnership_id>"
CAMPAIGN = f"{PARTNERSHIP}/campaigns/<uuid:campaign_id>"

urlpatterns = [
    path(
        f"{PARTNERSHIP}/webhook-endpoints",
        webhooks.EndpointListApi.as_view(),
        name="mgmt-webhook-endpoints",
    ),
    path(
        f"{PARTNERSHIP}/webhook-endpoints/<uuid:endpoint_id>",
        webhooks.EndpointDetailApi.as_view(),
        name="mgmt-webhook-endpoint",
    ),
    path(f"{PARTNERSHIP}/dry-runs", simulations.DryRunApi.as_view(), name="mgmt-dry-runs"),
    path(f"{CAMPAIGN}/backtests", simulations.BacktestListApi.as_view(), name="mgmt-backtests"),
    path(
        f"{CAMPAIGN}/backtests/<uuid:backtest_id>",
        simulations.BacktestDetailApi.as_view(),
        name="mgmt-backtest",
    ),
]
