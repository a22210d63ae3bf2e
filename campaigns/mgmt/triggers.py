from config.errors import ApplicationError, ErrorCode
from triggers.mgmt import apis
from triggers.models import Trigger

from ..services import (
    trigger_archive_refusals,
    trigger_change_errors,
    trigger_delete_check,
    trigger_delete_refusal,
)


class WithCampaignChecks:
    """The trigger views, refusing what would stop an active campaign (as Pilot's page)."""

    def change_check(self, trigger: Trigger) -> dict[str, list[str]]:
        errors = trigger_change_errors(trigger)
        if "status" in errors:  # archiving it under an active campaign: as a delete, 409
            raise ApplicationError(409, ErrorCode.RESOURCE_IN_USE, " ".join(errors["status"]))
        return errors

    def remove_check(self, trigger: Trigger) -> None:
        refused = [
            trigger_delete_refusal(trigger, broken)
            for broken in trigger_delete_check(trigger=trigger).refused
        ]
        refused += trigger_archive_refusals(trigger)
        if refused:
            raise ApplicationError(409, ErrorCode.RESOURCE_IN_USE, " ".join(refused))


class TriggerListApi(WithCampaignChecks, apis.TriggerListApi):
    pass


class TriggerDetailApi(WithCampaignChecks, apis.TriggerDetailApi):
    pass
