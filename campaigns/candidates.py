"""The candidate lists that events' compact decisions name (``CandidateList``): written by the
workers once per distinct list of campaigns, read back when decisions are put into words.

A list is content-addressed (a digest of its campaign ids and fact names), so every worker
finds the same row for the same campaigns; rows are never changed, so each process keeps the
lists it has read or written by id.
"""

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from .engine import CompiledCampaign, FactSpec, InvalidCampaign
from .models import CandidateList


@dataclass(frozen=True, slots=True)
class Listing:
    """A stored candidate list as the workers write decisions against it."""

    id: int
    # Per position: the names of the campaign's facts kept once per event, or None.
    fact_names: tuple[tuple[str, ...] | None, ...]
    facts: dict[str, FactSpec]  # the facts kept once per event, by name
    campaigns: Sequence[CompiledCampaign | InvalidCampaign]
    positions: dict[str, int]  # campaign key -> its position in the list
    # The positions whose campaigns keep their own facts' values (fact_names None).
    own_facts: tuple[int, ...] = ()


_TABLE = CandidateList._meta.db_table
_SELECT = f"SELECT id FROM {_TABLE} WHERE digest = %s"  # noqa: S608
_INSERT = (
    f"INSERT INTO {_TABLE} (digest, campaign_ids, fact_names, created_at) "  # noqa: S608
    "VALUES (%s, %s, %s::jsonb, now()) ON CONFLICT (digest) DO NOTHING RETURNING id"
)


def candidate_list_get_or_create(
    *, campaigns: Sequence[CompiledCampaign | InvalidCampaign]
) -> Listing:
    """The stored list of these campaigns, in this order, created if missing (one query per
    batch once it exists). In the batch's transaction, before any counter lock: a concurrent
    batch creating the same list makes this one wait for its commit, never the other way."""
    fact_names, facts = _fact_names(campaigns)
    names = [None if n is None else list(n) for n in fact_names]
    names_json = json.dumps(names, separators=(",", ":"))
    source = "\n".join(c.key for c in campaigns) + "\n" + names_json
    digest = hashlib.sha256(source.encode()).hexdigest()
    ids = [uuid.UUID(c.key) for c in campaigns]
    with connection.cursor() as cursor:
        cursor.execute(_SELECT, [digest])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_INSERT, [digest, ids, names_json])
            row = cursor.fetchone()
        if row is None:  # created meanwhile by a batch that has committed since
            cursor.execute(_SELECT, [digest])
            row = cursor.fetchone()
    _read[row[0]] = (ids, names)
    positions = {campaign.key: position for position, campaign in enumerate(campaigns)}
    own = tuple(position for position, n in enumerate(fact_names) if n is None)
    return Listing(row[0], fact_names, facts, campaigns, positions, own)


def _fact_names(campaigns) -> tuple[tuple, dict[str, FactSpec]]:
    """Facts kept once per event: those whose name means the same fact in every campaign of
    the list; a campaign reading another under a name already taken keeps its own (None)."""
    by_name: dict[str, FactSpec] = {}
    clashing: set[str] = set()
    for campaign in campaigns:
        for spec in getattr(campaign, "facts", ()):
            if by_name.setdefault(spec.name, spec) != spec:
                clashing.add(spec.name)
    names = []
    for campaign in campaigns:
        specs = getattr(campaign, "facts", ())
        if not specs:
            names.append(())
        elif any(spec.name in clashing for spec in specs):
            names.append(None)
        else:
            names.append(tuple(spec.name for spec in specs))
    kept = {name: spec for name, spec in by_name.items() if name not in clashing}
    return tuple(names), kept


# Lists read or written by this process, by id (rows never change, ids are never reused).
_read: dict[int, tuple[list[uuid.UUID], list]] = {}


def candidate_list_campaigns(*, list_id: int) -> tuple[list[uuid.UUID], list]:
    """A stored list's campaign ids and, per campaign, its fact names kept once per event
    (``[]``: none; ``None``: its decisions keep their own)."""
    known = _read.get(list_id)
    if known is None:
        rows = CandidateList.objects.filter(pk=list_id).values_list("campaign_ids", "fact_names")
        found = rows.first()
        if found is None:  # not for a committed event's list: read as no campaigns
            return [], []
        known = _read[list_id] = (list(found[0]), list(found[1]))
    return known
