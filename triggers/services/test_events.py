"""A test event sent by an operator from Pilot: the API's ingest, in test mode, recorded."""

from django.db import transaction

from config.errors import ApplicationError, ErrorCode
from partnerships.auth import PartnerPrincipal
from partnerships.models import ApiKey
from partnerships.selectors import api_key_record, partnership_record
from partnerships.services import audit_record

from ..dispatch import wake_workers
from ..models import Trigger, TriggerEvent
from .ingest import IngestResult, trigger_event_ingest

NO_TEST_MODE = (
    "This partnership does not accept test events: it has no active test API key. "
    "Create one (API keys, mode Test) first."
)


def trigger_event_send_test(
    *, trigger: Trigger, operator, external_user_id: str, context
) -> IngestResult:
    """Ingests the event as a request with one of the partnership's test keys would (same
    checks, same errors), records the operator on it and in the audit log.

    A partnership accepts test events while it has an active test key (the API takes them
    only with one); a suspended partnership accepts none (the API answers 403).
    """
    principal = _test_principal(trigger)
    body = {"trigger_name": trigger.name, "transaction_context": context}
    if external_user_id:  # none: the API's own error ("Send external_user_id or user_uuid")
        body["external_user_id"] = external_user_id
    with transaction.atomic():
        result = trigger_event_ingest(principal=principal, body=body, idempotency_key=None)
        event = TriggerEvent.objects.get(pk=result.trigger_event_id)
        event.operator = operator
        event.save(update_fields=["operator"])
        audit_record(
            actor=operator,
            action="event.send_test",
            target=event,
            partnership=trigger.partnership,
            mode=TriggerEvent.Mode.TEST,
            changes={"trigger": trigger.name, "external_user_id": external_user_id},
        )
        # Ingest woke the workers before this transaction committed: once more after.
        transaction.on_commit(wake_workers)
    return result


def test_mode_key(*, partnership_id) -> ApiKey | None:
    """The partnership's newest active test key: while it has one, it accepts test events."""
    keys = ApiKey.objects.filter(partnership_id=partnership_id, mode=ApiKey.Mode.TEST)
    return next((key for key in keys.order_by("-created_at") if key.is_active), None)


def _test_principal(trigger: Trigger) -> PartnerPrincipal:
    partnership = partnership_record(partnership_id=trigger.partnership_id)
    if not partnership.is_active:
        raise ApplicationError(403, ErrorCode.PARTNERSHIP_SUSPENDED)
    key = test_mode_key(partnership_id=trigger.partnership_id)
    if key is None:
        raise ApplicationError(403, ErrorCode.PERMISSION_DENIED, NO_TEST_MODE)
    return PartnerPrincipal(partnership=partnership, key=api_key_record(prefix=key.prefix))
