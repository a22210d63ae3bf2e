"""Client-sendable triggers (issue 12): an app sends them with a user token, so the user writes
the context. Every campaign that reads such a trigger, on it or through a fact that counts its
events, must bound what one user can earn: a per-user cap (rewards per user, per user and
period, or amount per user) and a bounded amount (fixed, a maximum, or the amount per user).

Held both ways: a trigger is not marked while a non-ended campaign reading it falls short
(``trigger_client_sendable_refusals``), and a campaign reading a marked trigger is not saved
short (``campaign_client_sendable_errors``, part of ``campaign_validate``).
"""

from django.db.models import Q

from triggers.models import Trigger

from .models import Campaign


def _bound_errors(campaign: Campaign) -> dict[str, str]:
    """Field -> what is missing for one user's money to be bounded."""
    errors = {}
    capped = (
        campaign.max_rewards_per_user is not None
        or campaign.max_amount_per_user is not None
        or (campaign.max_rewards_per_user_per_period is not None and bool(campaign.period))
    )
    if not capped:
        errors["max_rewards_per_user"] = (
            "Set a per-user cap (rewards per user, per user and period, or amount per user)"
        )
    bounded = (
        campaign.reward_type == Campaign.RewardType.FIXED
        or campaign.reward_max is not None
        or campaign.max_amount_per_user is not None
    )
    if not bounded:
        errors["reward_max"] = "Set a maximum reward: a percentage or expression is unbounded"
    return errors


def _client_sendable_read(campaign: Campaign) -> list[str]:
    """The client-sendable triggers the campaign reads: its own, and its facts' ones."""
    facts = campaign.facts if isinstance(campaign.facts, list) else []
    triggers = [fact.get("trigger") for fact in facts if isinstance(fact, dict)]
    names = {name for name in triggers if isinstance(name, str)}  # others: the compiler's error
    readers = Q(pk=campaign.trigger_id) | Q(name__in=names)
    sendable = Trigger.objects.filter(readers, partnership_id=campaign.partnership_id)
    return sorted(sendable.filter(client_sendable=True).values_list("name", flat=True))


def campaign_client_sendable_errors(*, campaign: Campaign) -> dict[str, str]:
    """Field -> message, for a campaign that reads a client-sendable trigger unbounded."""
    if campaign.status == Campaign.Status.ENDED or campaign.trigger_id is None:
        return {}
    names = _client_sendable_read(campaign)
    if not names:
        return {}
    errors = _bound_errors(campaign)
    reads = ", ".join(names)
    return {
        field: f"{message}: it reads the client-sendable trigger {reads}, whose context "
        "users write themselves."
        for field, message in errors.items()
    }


def trigger_client_sendable_refusals(*, trigger: Trigger) -> list[str]:
    """Why the trigger cannot be marked client-sendable: one line per non-ended campaign that
    reads it (on it, or a fact counting its events) without bounding a user's money."""
    readers = (
        Campaign.objects.filter(partnership_id=trigger.partnership_id)
        .filter(Q(trigger_id=trigger.pk) | Q(facts__contains=[{"trigger": trigger.name}]))
        .exclude(status=Campaign.Status.ENDED)
        .order_by("-priority", "created_at")
    )
    refusals = []
    for campaign in readers:
        errors = _bound_errors(campaign)
        if errors:
            missing = "; ".join(errors.values())
            refusals.append(f"The campaign {campaign.name} ({campaign.slug}) reads it: {missing}.")
    return refusals
