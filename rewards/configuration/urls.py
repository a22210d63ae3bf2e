from django.urls import path

from . import apis

CONFIGURATION = "partnerships/<uuid:partnership_id>/config"

urlpatterns = [
    path(CONFIGURATION, apis.ConfigurationExportApi.as_view(), name="mgmt-configuration"),
    path(
        f"{CONFIGURATION}/plan", apis.ConfigurationPlanApi.as_view(), name="mgmt-configuration-plan"
    ),
    path(
        f"{CONFIGURATION}/apply",
        apis.ConfigurationApplyApi.as_view(),
        name="mgmt-configuration-apply",
    ),
]
