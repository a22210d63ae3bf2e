from django.urls import path

from ..lifecycle import Action
from . import apis, triggers

PARTNERSHIP = "partnerships/<uuid:partnership_id>"
CAMPAIGN = f"{PARTNERSHIP}/campaigns/<uuid:campaign_id>"

urlpatterns = [
    path(f"{PARTNERSHIP}/triggers", triggers.TriggerListApi.as_view(), name="mgmt-triggers"),
    path(
        f"{PARTNERSHIP}/triggers/<int:trigger_id>",
        triggers.TriggerDetailApi.as_view(),
        name="mgmt-trigger",
    ),
    path(f"{PARTNERSHIP}/campaigns", apis.CampaignListApi.as_view(), name="mgmt-campaigns"),
    path(CAMPAIGN, apis.CampaignDetailApi.as_view(), name="mgmt-campaign"),
    *(
        path(
            f"{CAMPAIGN}/{action.value}",
            apis.action_view(action).as_view(),
            name=f"mgmt-campaign-{action.value}",
        )
        for action in Action
    ),
]
