from django.urls import path

from .apis import TriggerEventDetailApi

urlpatterns = [
    path(
        "partnerships/<str:partnership_id>/trigger-events/<str:trigger_event_id>",
        TriggerEventDetailApi.as_view(),
        name="trigger-event-detail",
    ),
]
