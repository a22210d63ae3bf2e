from django.urls import include, path

from .apis import TriggerEventDetailApi, TriggerEventReverseApi, UserBalanceApi, UserRewardListApi
from .user_apis import UserDetailApi

PARTNERSHIP = "partnerships/<str:partnership_id>"

urlpatterns = [
    path(
        f"{PARTNERSHIP}/trigger-events/<str:trigger_event_id>",
        TriggerEventDetailApi.as_view(),
        name="trigger-event-detail",
    ),
    path(
        f"{PARTNERSHIP}/triggers/reverse",
        TriggerEventReverseApi.as_view(),
        name="trigger-event-reverse",
    ),
    path(
        f"{PARTNERSHIP}/users/<path:external_user_id>/rewards",
        UserRewardListApi.as_view(),
        name="user-rewards",
    ),
    path(
        f"{PARTNERSHIP}/users/<path:external_user_id>/balance",
        UserBalanceApi.as_view(),
        name="user-balance",
    ),
    path("", include("rewards.reports.urls")),
]

# --- End users: attributes, totals, erasure (issue 12) -----------------------------------------
# External ids may hold "/" (the ingest takes them): ``path:`` segments. This route matches
# any path below users/, so it comes after every users/.../<sub-resource> route (those of
# triggers/urls.py are included before this module).
urlpatterns += [
    path(
        f"{PARTNERSHIP}/users/<path:external_user_id>",
        UserDetailApi.as_view(),
        name="user-detail",
    ),
]
