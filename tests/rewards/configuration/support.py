import copy
import threading
from contextlib import contextmanager

from django.db import connection, transaction

from rewards.configuration.document import document_dump, document_parse
from rewards.configuration.services import configuration_apply, configuration_plan
from rewards.configuration.state import configuration_export


def exported(partnership) -> dict:
    return copy.deepcopy(configuration_export(partnership=partnership))


def text_of(partnership, fmt: str = "yaml") -> str:
    return document_dump(configuration_export(partnership=partnership), fmt)


def plan(partnership, document: dict, actor=None):
    return configuration_plan(
        partnership=partnership, document=document_parse(document_dump(document)), actor=actor
    )


def apply(partnership, document: dict, actor, **given):
    """Plans, then applies against the plan's fingerprint (or ``given``)."""
    parsed = document_parse(document_dump(document))
    if not given:
        given = {"expect": configuration_plan(partnership=partnership, document=parsed).fingerprint}
    return configuration_apply(partnership=partnership, document=parsed, actor=actor, **given)


def changes(result) -> list[tuple]:
    """(kind, key, action, outcome) of each change of a plan."""
    return [(c.kind, c.key, c.action, c.outcome) for c in result.changes]


def campaign(document: dict, slug: str) -> dict:
    return next(c for c in document["campaigns"] if c["slug"] == slug)


@contextmanager
def held(take):
    """Runs the block while another connection holds, in a transaction, the locks ``take``
    takes (a Pilot edit or an apply in flight)."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                take()
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()
