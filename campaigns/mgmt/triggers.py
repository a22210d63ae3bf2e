from config.errors import ApplicationError, ErrorCode
from triggers.mgmt import apis
from triggers.models import Trigger

from ..services import trigger_change_errors, trigger_delete_check, trigger_delete_refusal


class WithCampaignChecks:
    """The trigger views, refusing what would stop an active campaign (as Pilot's page)."""

    def change_check(self, trigger: Trigger) -> dict[str, list[str]]:
        return trigger_change_errors(trigger)

    def remove_check(self, trigger: Trigger) -> None:
        refused = list(trigger_delete_check(trigger=trigger).refused)
        refused += list(trigger.campaigns.filter(status="active"))
        if refused:
            raise ApplicationError(
                409,
                ErrorCode.RESOURCE_IN_USE,
                " ".join(trigger_delete_refusal(trigger, broken) for broken in refused),
            )


class TriggerListApi(WithCampaignChecks, apis.TriggerListApi):
    pass


class TriggerDetailApi(WithCampaignChecks, apis.TriggerDetailApi):
    pass
