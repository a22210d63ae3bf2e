"""The fault suite's partner and client, and what must hold whatever broke, read back from the
database (``ledger_check``, ``events_check``).

A fault test starts the stack's real processes (tests/support.py: gunicorn, Celery workers,
beat) against the run's private PostgreSQL and a private Redis, breaks one thing on purpose
while events flow, and ends by reading the rows: this process's ORM is on the private server
(the ``private_db`` fixture).
"""

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, Sum

from campaigns.models import Campaign
from partnerships.models import EndUser
from rewards.models import CampaignCounter, MoneyBucket, Reward, UserCounter
from tests.factories import ApiKeyFactory, CampaignFactory, TriggerFactory
from tests.support import process_env
from triggers.models import TriggerEvent

# The answers that ask a client to send the same request again (docs/api.md).
RETRYABLE = frozenset({429, 503})


def stack_env(postgres_url: str, broker_url: str, **overrides: str) -> dict[str, str]:
    """The stack's environment here: the schedule every half second, an attempt that did not
    finish retried at once."""
    return process_env(
        DATABASE_URL=postgres_url,
        CELERY_BROKER_URL=broker_url,
        EVENT_DISPATCH_INTERVAL="0.5",
        WEBHOOK_DISPATCH_INTERVAL="0.5",
        EVENT_RETRY_DELAY_SECONDS="0",
        **overrides,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    key: str
    status: int  # 0: no answer (the connection failed)
    code: str = ""
    event_id: str | None = None
    replayed: bool = False
    retry_after: str | None = None


class Partner:
    """A partnership with a live key and a transaction trigger, and its client: an event is sent
    with its Idempotency-Key, and sent again after a retryable answer or a lost connection until
    it is accepted, as docs/api.md asks of clients. Every answer is kept, in order."""

    def __init__(self, bases: list[str] = ()) -> None:
        key = ApiKeyFactory()
        self.partnership = key.partnership
        self.trigger = TriggerFactory(partnership=key.partnership)
        self.bases = list(bases)
        self.answers: list[Answer] = []
        self._path = f"/partnerships/{key.partnership_id}/triggers"
        self._headers = {"x-api-key": key.plaintext}
        self._http = httpx.Client(timeout=10)

    @classmethod
    def rewarded(cls, bases: list[str], *, budgeted: int) -> "Partner":
        """With two campaigns: "every" pays 1 for every event, "budgeted" 5 for as many events
        as its budget, 5 x ``budgeted``, covers."""
        partner = cls(bases)
        partner.campaign("every", reward_value=Decimal("1"))
        partner.campaign("budgeted", reward_value=Decimal("5"), budget=Decimal(5 * budgeted))
        return partner

    def campaign(self, slug: str, **fields) -> Campaign:
        return CampaignFactory(trigger=self.trigger, slug=slug, **fields)

    def send(self, key: str, user: str, base: str | None = None) -> Answer:
        body = {
            "trigger_name": self.trigger.name,
            "external_user_id": user,
            "transaction_context": {"amount": 25, "currency": "EUR"},
        }
        url = f"{base or self.bases[0]}{self._path}"
        try:
            response = self._http.post(
                url, json=body, headers={**self._headers, "Idempotency-Key": key}
            )
        except httpx.TransportError:
            answer = Answer(key, 0)
        else:
            try:
                document = response.json()
            except ValueError:  # not our envelope (a proxy's or the server's own page)
                document = {}
            answer = Answer(
                key,
                response.status_code,
                document.get("code", ""),
                (document.get("data") or {}).get("trigger_event_id"),
                response.headers.get("Idempotent-Replayed") == "true",
                response.headers.get("Retry-After"),
            )
        self.answers.append(answer)
        return answer

    def deliver(self, key: str, user: str, base: str | None = None, within: float = 60) -> Answer:
        """Sends until the event is accepted, refused for good, or ``within`` seconds passed."""
        deadline = time.monotonic() + within
        while True:
            answer = self.send(key, user, base)
            if answer.status not in RETRYABLE | {0} or time.monotonic() > deadline:
                return answer
            time.sleep(0.1)

    def accepted(self) -> dict[str, set[str]]:
        """{idempotency key: the event ids its accepted answers named}."""
        accepted: dict[str, set[str]] = {}
        for answer in list(self.answers):
            if 200 <= answer.status < 300:
                accepted.setdefault(answer.key, set()).add(answer.event_id)
        return accepted

    def unexpected(self) -> list[Answer]:
        """Answers that are neither an acceptance nor a retryable refusal."""
        return [a for a in self.answers if not (200 <= a.status < 300 or a.status in RETRYABLE)]

    def events(self):
        return TriggerEvent.objects.filter(partnership=self.partnership)


class Load:
    """``threads`` clients sending new events back to back, each until it is accepted, until
    the block ends; spread over the partner's web servers."""

    def __init__(self, partner: Partner, *, threads: int = 4, users: int = 40) -> None:
        self.partner = partner
        self.users = users
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, index: int) -> None:
        base = self.partner.bases[index % len(self.partner.bases)]
        while not self._stop.is_set():
            number = next(self._numbers)
            self.partner.deliver(f"load-{number}", f"user-{number % self.users}", base)

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """No new event from now on; returns once every event sent has its final answer."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def accepted(self) -> int:
        return len(self.partner.accepted())

    def wait_for(self, more: int, timeout: float = 60) -> None:
        """Until ``more`` new events were accepted."""
        target = self.accepted + more
        deadline = time.monotonic() + timeout
        while self.accepted < target:
            assert time.monotonic() < deadline, f"{target - self.accepted} events short"
            time.sleep(0.05)


def settled(partner: Partner, count: int):
    """A check for ``wait_until``: ``count`` of the partner's events are processed. Survives
    this process's connection being cut (the server restarted)."""

    def check() -> bool:
        try:
            return partner.events().filter(status=TriggerEvent.Status.PROCESSED).count() >= count
        except (OperationalError, InterfaceError):
            connection.close()
            return False

    return check


def events_check(partner: Partner) -> dict[str, str]:
    """Every accepted event stored once, under the one id all of its answers named, processed;
    no other row (an event or a user a refused request half wrote). Returns {key: event id}."""
    accepted = partner.accepted()
    assert all(len(ids) == 1 for ids in accepted.values()), "a key named two events"
    ids = {key: ids.pop() for key, ids in accepted.items()}
    stored = {key: str(pk) for key, pk in partner.events().values_list("idempotency_key", "id")}
    assert stored == ids
    statuses = Counter(partner.events().values_list("status", flat=True))
    assert statuses == {TriggerEvent.Status.PROCESSED: len(ids)}, statuses
    users = {user for (user,) in partner.events().values_list("end_user__external_user_id")}
    assert (
        set(
            EndUser.objects.filter(partnership=partner.partnership).values_list(
                "external_user_id", flat=True
            )
        )
        == users
    )
    return ids


def ledger_check(partner: Partner) -> dict[str, tuple[int, Decimal]]:
    """What holds whatever broke: at most one reward per event and campaign; each campaign's
    counter, its users' counters and the reports' figures equal to its rewards; no budget
    overspent (spending only grows here, so never overspent on the way either). Returns
    {campaign slug: (rewards, amount)}."""
    rewards = Reward.objects.filter(partnership=partner.partnership, mode="live")
    twice = rewards.values("campaign", "trigger_event").annotate(n=Count("id")).filter(n__gt=1)
    assert not twice.exists()
    figures = {}
    for campaign in Campaign.objects.filter(partnership=partner.partnership):
        mine = rewards.filter(campaign=campaign)
        count, amount = mine.count(), mine.aggregate(s=Sum("amount"))["s"] or Decimal(0)
        counter = CampaignCounter.objects.filter(campaign=campaign, mode="live").first()
        assert (counter.reward_count, counter.spent) == (count, amount) if counter else not count
        per_user = dict(mine.values_list("end_user").annotate(n=Count("id")))
        for user, tallied in UserCounter.objects.filter(
            campaign=campaign, mode="live", period=""
        ).values_list("end_user", "reward_count"):
            assert tallied == per_user.get(user, 0)
        money = MoneyBucket.objects.filter(campaign_id=campaign.id, mode="live", kind="issued")
        reported = money.aggregate(n=Sum("count"), s=Sum("amount"))
        assert (reported["n"] or 0, reported["s"] or Decimal(0)) == (count, amount)
        if campaign.budget is not None:
            assert amount <= campaign.budget
        figures[campaign.slug] = (count, amount)
    return figures


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a Celery worker's pool processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found
