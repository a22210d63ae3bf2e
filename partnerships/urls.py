from django.urls import path

from .apis import PartnershipDetailApi

urlpatterns = [
    path("partnerships/<str:partnership_id>", PartnershipDetailApi.as_view(), name="partnership"),
]
