"""A report's filters as a client names them (a campaign by id or slug, a trigger by name)
turned into a ``ReportScope``: the partner API and the export command share it (Pilot's pages
have their form, ``pilot_filters``)."""

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
        campaign_ids.append(_id_or_404(found, ErrorCode.CAMPAIGN_DOES_NOT_EXIST, "id or slug"))
    if trigger:
        found = trigger_record(partnership_id=partnership.id, name=trigger)
        trigger_ids.append(_id_or_404(found, ErrorCode.TRIGGER_DOES_NOT_EXIST, "name"))
    return report_scope(
        partnership=partnership,
        mode=mode,
        first_day=first_day,
        last_day=last_day,
        campaign_ids=campaign_ids,
        trigger_ids=trigger_ids,
    )


def _id_or_404(found, code: ErrorCode, named_by: str):
    if found is None:
        what = code.removesuffix("_does_not_exist")
        raise ApplicationError(404, code, f"No {what} of this partnership has this {named_by}")
    return found.id
