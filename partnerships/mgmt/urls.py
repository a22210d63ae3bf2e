from django.urls import path

from . import apis

urlpatterns = [
    path("partnerships", apis.PartnershipListApi.as_view(), name="mgmt-partnerships"),
    path(
        "partnerships/<uuid:partnership_id>",
        apis.PartnershipDetailApi.as_view(),
        name="mgmt-partnership",
    ),
    path(
        "partnerships/<uuid:partnership_id>/api-keys",
        apis.ApiKeyListApi.as_view(),
        name="mgmt-api-keys",
    ),
    path(
        "partnerships/<uuid:partnership_id>/api-keys/<str:prefix>",
        apis.ApiKeyDetailApi.as_view(),
        name="mgmt-api-key",
    ),
    path(
        "partnerships/<uuid:partnership_id>/api-keys/<str:prefix>/revoke",
        apis.ApiKeyRevokeApi.as_view(),
        name="mgmt-api-key-revoke",
    ),
    path(
        "partnerships/<uuid:partnership_id>/api-keys/<str:prefix>/rotate",
        apis.ApiKeyRotateApi.as_view(),
        name="mgmt-api-key-rotate",
    ),
]
