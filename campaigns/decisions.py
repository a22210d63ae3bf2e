"""What each candidate campaign decided about an event: stable codes and parameters, stored
compactly on the event and put into words only when read.

Stored form, one short array per decision (``TriggerEvent.decisions``)::

    [campaign_id, outcome]                      e.g. ["5d0c…", "condition_false"]
    [campaign_id, outcome, amount]              e.g. ["5d0c…", "rewarded", "2.13"]
    [campaign_id, outcome, amount, params]      e.g. ["5d0c…", "budget_exhausted", null,
                                                      {"amount": "10.00", "budget": "500"}]
    [campaign_id, outcome, amount, params, facts]  e.g. ["5d0c…", "condition_false", null,
                                                      null, {"purchases_30d": 2}]

The fifth element, the values of the campaign's facts as the rules saw them, is there only for
a campaign that reads facts (events evaluated before it was kept have none). A limit outcome's
parameters name the limit that bit (``budget``, ``max_rewards``, ...) since the same release.

Since issue 13 the workers store an event's decisions in the compact form, a JSON object::

    {"candidates": 17,              the CandidateList row: the campaigns judged, in order
     "n": 100,                      how many (the list's length)
     "decisions": [[3, "rewarded", "2.13"], [7, "budget_exhausted", null, {...}]],
     "facts": {"purchases_30d": 2}} the values of the facts the list keeps once per event

Each listed decision is the array above with the campaign's position in the list in place of
its id; every campaign not listed decided ``condition_false`` with no parameters, and with
its facts' values from ``"facts"`` when it reads facts (the list names them per campaign). A
hundred candidates take one short object instead of a hundred arrays (~6 KB).
:func:`decisions_expand` turns it back into the array form, which every reader reads.

Events evaluated before the array form existed hold one object per decision, with the campaign's
slug and the message in words (``{"campaign_id", "campaign", "outcome", "amount",
"message"}``); :func:`decision_describe` reads both.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple


class Outcome(StrEnum):
    """Why a campaign did or did not reward an event: one per candidate campaign."""

    REWARDED = "rewarded"
    CONDITION_FALSE = "condition_false"
    ZERO_AMOUNT = "zero_amount"
    BUDGET_EXHAUSTED = "budget_exhausted"
    COUNT_CAP_REACHED = "count_cap_reached"
    USER_CAP_REACHED = "user_cap_reached"
    PERIOD_CAP_REACHED = "period_cap_reached"
    OUTSIDE_SCHEDULE = "outside_schedule"
    SKIPPED_EXCLUSIVE = "skipped_exclusive"
    ERROR = "error"
    CAMPAIGN_INVALID = "campaign_invalid"
    USER_BLOCKED = "user_blocked"


NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def params(**values: Any) -> Mapping[str, Any]:
    """Read-only message parameters (JSON values: strings, numbers, booleans)."""
    return MappingProxyType(values)


class Decision(NamedTuple):
    """One campaign's decision on one event (a tuple: ~2x cheaper to build than a dataclass,
    and there are a hundred per event with a hundred campaigns)."""

    campaign_id: uuid.UUID
    outcome: Outcome
    amount: Decimal | None = None  # what was issued; None unless rewarded now
    params: Mapping[str, Any] = NO_PARAMS  # what the message says, e.g. {"amount": "10.00"}
    facts: Mapping[str, Any] | None = None  # the campaign's facts as its rules saw them

    @property
    def message(self) -> str:
        return decision_message(self.outcome, self.params)

    def packed(self, campaign_key: str | int | None = None) -> tuple:
        """The stored form; ``campaign_key`` is ``str(campaign_id)`` when the caller has it,
        or the campaign's position in a compact form's list."""
        key = str(self.campaign_id) if campaign_key is None else campaign_key
        if self.facts is not None:
            amount = None if self.amount is None else str(self.amount)
            return (key, self.outcome, amount, dict(self.params) or None, dict(self.facts))
        if self.params:
            amount = None if self.amount is None else str(self.amount)
            return (key, self.outcome, amount, dict(self.params))
        if self.amount is not None:
            return (key, self.outcome, str(self.amount))
        return (key, self.outcome)

    @classmethod
    def unpack(cls, stored: list | tuple) -> "Decision":
        campaign_id, outcome, amount, stored_params, facts = (*stored, None, None, None)[:5]
        return cls(
            uuid.UUID(campaign_id),
            Outcome(outcome),
            None if amount is None else Decimal(amount),
            MappingProxyType(stored_params) if stored_params else NO_PARAMS,
            None if facts is None else MappingProxyType(facts),
        )


@dataclass(frozen=True, slots=True)
class DecisionView:
    """A decision in words, as the status API and Pilot show it."""

    campaign_id: uuid.UUID
    campaign: str  # the slug
    outcome: str
    amount: str | None
    message: str
    # Pilot's detail: the facts' values the rules saw (None: not kept, or no facts), and the
    # limits a limit outcome met, in words.
    facts: Mapping[str, Any] | None = None
    limits: tuple[str, ...] = ()


def decision_describe(stored: list | dict, slugs: Mapping[uuid.UUID, str]) -> DecisionView:
    """One stored decision, either form, in words; ``slugs`` are the campaigns' slugs now
    (a campaign deleted since has none: "")."""
    if isinstance(stored, dict):  # evaluated before the compact form: words were stored
        campaign_id = uuid.UUID(stored["campaign_id"])
        return DecisionView(
            campaign_id,
            slugs.get(campaign_id, stored.get("campaign", "")),
            stored["outcome"],
            stored.get("amount"),
            stored.get("message", ""),
        )
    try:
        decision = Decision.unpack(stored)
    except ValueError:  # an outcome this version does not know (written by a newer one)
        return DecisionView(
            uuid.UUID(stored[0]), slugs.get(uuid.UUID(stored[0]), ""), stored[1], None, ""
        )
    return DecisionView(
        decision.campaign_id,
        slugs.get(decision.campaign_id, ""),
        decision.outcome.value,
        None if decision.amount is None else str(decision.amount),
        decision.message,
        decision.facts,
        limits_met(decision.params),
    )


def decisions_compact(stored: Any) -> bool:
    """The compact form (an object naming its candidate list), not a list of decisions."""
    return isinstance(stored, dict) and "candidates" in stored


def decisions_expand(
    stored: Mapping[str, Any], campaign_ids: Sequence[uuid.UUID], fact_names: Sequence[Any]
) -> list[list]:
    """The compact form as the array form, one decision per campaign of its list, in order;
    ``campaign_ids`` and ``fact_names`` are the list's (``CandidateList``)."""
    listed = {item[0]: item for item in stored.get("decisions", ())}
    facts = stored.get("facts")
    expanded = []
    for position, campaign_id in enumerate(campaign_ids):
        key = str(campaign_id)
        item = listed.get(position)
        if item is not None:
            expanded.append([key, *item[1:]])
            continue
        names = fact_names[position] if position < len(fact_names) else None
        if facts is not None and names:
            expanded.append([key, CONDITION_FALSE, None, None, {n: facts[n] for n in names}])
        else:
            expanded.append([key, CONDITION_FALSE])
    return expanded


def stored_campaign_ids(stored: list) -> set[uuid.UUID]:
    """The campaigns named by an event's stored decisions, either form."""
    return {
        uuid.UUID(item["campaign_id"] if isinstance(item, dict) else item[0]) for item in stored
    }


# --- Words ------------------------------------------------------------------------------------
# One sentence per outcome; some outcomes have variants chosen by a ``reason`` parameter.
# Parameters a message names but a stored decision lacks read as "?" (never an error).

_MESSAGES: dict[tuple[Outcome, str], str] = {
    (Outcome.REWARDED, ""): "",
    (Outcome.REWARDED, "earlier"): "already rewarded by an earlier evaluation",
    (Outcome.CONDITION_FALSE, ""): "condition is false",
    (Outcome.CONDITION_FALSE, "absent"): "condition not met: {detail}",
    (Outcome.ZERO_AMOUNT, ""): "the computed reward is {amount}",
    (Outcome.BUDGET_EXHAUSTED, ""): "a reward of {amount} would exceed the campaign's budget",
    (Outcome.COUNT_CAP_REACHED, ""): "the campaign has issued its maximum number of rewards",
    (Outcome.USER_CAP_REACHED, ""): "a reward of {amount} would exceed the user's cap",
    (Outcome.PERIOD_CAP_REACHED, ""): "the user's cap for this {period} is reached",
    (Outcome.OUTSIDE_SCHEDULE, ""): "outside the campaign's dates",
    (Outcome.SKIPPED_EXCLUSIVE, ""): "an exclusive campaign already rewarded it",
    (Outcome.ERROR, ""): "{detail}",
    (Outcome.ERROR, "condition_failed"): "condition failed: {detail}",
    (Outcome.ERROR, "condition_not_bool"): "condition gave {value}, not a bool",
    (Outcome.ERROR, "field_not_number"): "context.{field} is not a number",
    (Outcome.ERROR, "expression_failed"): "reward expression failed: {detail}",
    (Outcome.ERROR, "expression_not_number"): "reward expression gave {value}",
    (Outcome.ERROR, "amount_too_large"): (
        "reward of {amount} is beyond the largest amount, {largest}"
    ),
    (Outcome.CAMPAIGN_INVALID, ""): "the campaign cannot be evaluated: {errors}",
    (Outcome.USER_BLOCKED, ""): "the user is blocked: they earn nothing until unblocked",
}


CONDITION_FALSE = Outcome.CONDITION_FALSE.value


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def decision_message(outcome: Outcome, values: Mapping[str, Any]) -> str:
    template = _MESSAGES.get((outcome, values.get("reason", ""))) or _MESSAGES[(outcome, "")]
    return template.format_map(_Missing(values)) if "{" in template else template


# Short names of the outcomes, for reports (a chart legend, a table's first column).
_OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.REWARDED: "Rewarded",
    Outcome.CONDITION_FALSE: "Condition not met",
    Outcome.ZERO_AMOUNT: "Zero amount",
    Outcome.BUDGET_EXHAUSTED: "Budget exhausted",
    Outcome.COUNT_CAP_REACHED: "Reward cap reached",
    Outcome.USER_CAP_REACHED: "User cap reached",
    Outcome.PERIOD_CAP_REACHED: "Period cap reached",
    Outcome.OUTSIDE_SCHEDULE: "Outside the campaign's dates",
    Outcome.SKIPPED_EXCLUSIVE: "Skipped (exclusive campaign)",
    Outcome.ERROR: "Error",
    Outcome.CAMPAIGN_INVALID: "Campaign invalid",
    Outcome.USER_BLOCKED: "User blocked",
}


def outcome_label(code: str) -> str:
    """An outcome code in words; a code this version does not know reads as itself."""
    try:
        return _OUTCOME_LABELS[Outcome(code)]
    except ValueError:
        return code.replace("_", " ").capitalize()


# The limits a limit outcome names in its parameters (``campaigns.judge``), in words.
_LIMITS = (
    ("budget", "budget {}"),
    ("max_rewards", "at most {} rewards in all"),
    ("max_rewards_per_user", "at most {} rewards per user"),
    ("max_amount_per_user", "at most {} per user"),
    ("max_rewards_per_user_per_period", "at most {} rewards per user per {period}"),
)


def limits_met(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The limits named by a decision's parameters, in words (none for other outcomes, nor for
    decisions stored before limits were named)."""
    return tuple(
        template.format(values[name], period=values.get("period", "period"))
        for name, template in _LIMITS
        if name in values
    )
