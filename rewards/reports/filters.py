"""A report's filters as a client names them (a campaign by id or slug, a trigger by name)
turned into a ``ReportScope``: the partner API, Pilot's exports and the command share it."""

from datetime import date

from campaigns.selectors import campaign_get_by_ref
from config.errors import ApplicationError, ErrorCode
from partnerships.models import Partnership
from triggers.selectors import trigger_record

from .selectors import ReportScope, report_scope


def report_scope_for(
    *,
    partnership: Partnership,
    mode: str,
    first_day: date,
    last_day: date,
    campaign: str | None = None,
    trigger: str | None = None,
) -> ReportScope:
    """Unknown campaign or trigger: 404 (a report of zeros would look like an answer)."""
    campaign_ids, trigger_ids = [], []
    if campaign:
        found = campaign_get_by_ref(partnership_id=partnership.id, ref=campaign)
        if found is None:
            raise ApplicationError(
                404,
                ErrorCode.CAMPAIGN_DOES_NOT_EXIST,
                "No campaign of this partnership has this id or slug",
            )
        campaign_ids.append(found.id)
    if trigger:
        record = trigger_record(partnership_id=partnership.id, name=trigger)
        if record is None:
            raise ApplicationError(
                404,
                ErrorCode.TRIGGER_DOES_NOT_EXIST,
                "No trigger of this partnership has this name",
            )
        trigger_ids.append(record.id)
    return report_scope(
        partnership=partnership,
        mode=mode,
        first_day=first_day,
        last_day=last_day,
        campaign_ids=campaign_ids,
        trigger_ids=trigger_ids,
    )
