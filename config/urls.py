from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from partnerships.auth import client_ip
from triggers.metrics import QueueCollector

from . import health
from .metrics import metrics_view

admin.site.site_header = "Pilot"
admin.site.site_title = "Pilot"
admin.site.index_title = "Campaign Rewards operations"

urlpatterns = [
    # The ingest route first: URL resolution tries patterns in order, on every request.
    path("", include("triggers.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path(
        "metrics",
        metrics_view(collectors=[QueueCollector()], client_ip=client_ip),
        name="metrics",
    ),
    path("pilot/reports/", include("rewards.reports.pilot_urls")),
    path("pilot/second-factor/", include("partnerships.second_factor_urls")),
    path("pilot/", admin.site.urls),
    path("management/v1/", include("partnerships.mgmt.urls")),
    path("management/v1/", include("campaigns.mgmt.urls")),
    path("management/v1/", include("rewards.mgmt.urls")),
    path("management/v1/", include("rewards.configuration.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("partnerships.urls")),
    path("", include("rewards.urls")),
]

if settings.BENCH_VIEWS:  # `make bench` only: comparison views
    urlpatterns.append(path("bench/", include("bench.urls")))

handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
