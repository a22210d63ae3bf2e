from django.urls import path

from .apis import TriggerEventCancelApi, TriggerEventCreateApi

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
