from django.urls import path

from .views import NaiveTriggerEventApi, bare

urlpatterns = [
    path("bare", bare, name="bench-bare"),
    path("naive/<str:partnership_id>", NaiveTriggerEventApi.as_view(), name="bench-naive"),
]
