from django.urls import path

from .apis import TriggerEventCancelApi, TriggerEventCreateApi
from .token_apis import UserTokenCollectionApi, UserTokenRevokeApi

# Served around Django's middleware stack in production (config/fastpath.py), as regular
# expressions matching the path; still in urlpatterns below for reverse(), OpenAPI and tests.
fast_routes = [
    (r"/partnerships/(?P<partnership_id>[^/]+)/triggers", TriggerEventCreateApi.as_view()),
]

urlpatterns = [
    path(
        "partnerships/<str:partnership_id>/triggers",
        TriggerEventCreateApi.as_view(),
        name="trigger-event-create",
    ),
    path(
        "partnerships/<str:partnership_id>/trigger-events/<str:trigger_event_id>/cancel",
        TriggerEventCancelApi.as_view(),
        name="trigger-event-cancel",
    ),
]

# --- User tokens for client-side apps (issue 12) ---------------------------------------------
urlpatterns += [
    path(
        "partnerships/<str:partnership_id>/users/<path:external_user_id>/tokens",
        UserTokenCollectionApi.as_view(),
        name="user-tokens",
    ),
    path(
        "partnerships/<str:partnership_id>/users/<path:external_user_id>/tokens/<str:token_id>",
        UserTokenRevokeApi.as_view(),
        name="user-token",
    ),
]
