from django.urls import path

from .apis import TriggerEventCancelApi, TriggerEventCreateApi

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
