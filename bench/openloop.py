"""The open-loop client of the end-to-end and soak benchmarks: events sent at a fixed rate,
request k due at ``start + k / rate`` whatever the server does (no coordinated omission: a
request that waits for a free connection waits on the clock), each event numbered in its tags
(``seq``) so the database tells when each one was due. Meanwhile, on their own connections in
the same event loop: the pending queue (events queued, not yet claimed) counted every
``pending_every`` seconds, and, for every ``visible_every``-th event, its reward row polled
for every ``POLL_SECONDS`` until it is seen (event -> reward visible)."""

import asyncio
import contextlib
import gc
import json
import math
import random
import re
import time
from dataclasses import dataclass, field

import orjson
import psycopg

from . import load
from .stack import user_id

POLL_SECONDS = 0.01
CONNECTIONS = 64
# A keep-alive connection idle this long is replaced before the next request: gunicorn closes
# idle ones after 2 s (its `keepalive`), and a request written as it does so would be lost.
IDLE_RECONNECT = 1.5
PENDING_SQL = "SELECT count(*) FROM triggers_triggerevent WHERE status = 'queued' AND attempts = 0"
_VISIBLE_SQL = "SELECT trigger_event_id FROM rewards_reward WHERE trigger_event_id = ANY(%s)"
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_USER, _SEQ = load.USER_MARK, "@SEQ@"
# The event of the ingest bench (bench/load.py), numbered in its tags.
_EVENT = json.loads(load.BODY)
_BODY = json.dumps({**_EVENT, "tags": {**_EVENT["tags"], "seq": _SEQ}}, separators=(",", ":"))


@dataclass
class Run:
    """One open-loop run, as the client saw it. Times in seconds; ``start`` is request 0's
    scheduled send on the wall clock (``time.time()``), so rows' timestamps compare with it."""

    rate: float
    seconds: float
    start: float = 0.0
    ok: int = 0  # 2xx answers
    errors: int = 0  # other answers, broken connections, never answered
    latencies: list[float] = field(default_factory=list)  # per request; inf if unanswered
    lags: list[float] = field(default_factory=list)  # the client's own lateness in sending
    pending: list[tuple[float, int]] = field(default_factory=list)  # (since start, events)
    visible: list[float] = field(default_factory=list)  # sampled events; inf if never seen

    @property
    def requests(self) -> int:
        return round(self.rate * self.seconds)

    @property
    def span(self) -> float:
        """Seconds from the first scheduled send to one interval after the last: the
        denominator of rates."""
        return self.requests / self.rate

    def due(self, seq: int) -> float:
        return self.start + seq / self.rate


def finite(value):
    """``value`` with every non-finite float (a lost request's inf, an empty sample's nan) as
    None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def write_json(path, value) -> None:
    path.write_text(json.dumps(finite(value), indent=2, allow_nan=False) + "\n")


def percentile(values, pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def run(
    url: str,
    api_key: str,
    users: int,
    rate: float,
    seconds: float,
    *,
    dsn: str,
    pending_every: float = 0.25,
    visible_every: int = 0,
    visible_timeout: float = 30.0,
    result: Run | None = None,
) -> Run:
    """Runs the load; ``result``, if given, is filled as it goes (``ok``, ``pending``), so
    another thread can watch its progress."""
    result = result or Run(rate, seconds)
    gc.collect()
    gc.disable()  # a collection pause would be billed to the server
    try:
        asyncio.run(
            _run(result, url, api_key, users, dsn, pending_every, visible_every, visible_timeout)
        )
        return result
    finally:
        gc.enable()


def _templates(url: str, api_key: str, users: int) -> tuple[str, list[tuple[str, str]]]:
    host, _, path = url.removeprefix("http://").partition("/")
    head = (
        f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"x-api-key: {api_key}\r\nContent-Length: "
    )
    bodies = []
    for n in range(users):
        before, after = _BODY.replace(_USER, user_id(n)).split(_SEQ)
        bodies.append((before, after))
    return head, bodies


async def _run(
    result: Run, url, api_key, users, dsn, pending_every, visible_every, visible_timeout
) -> None:
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").partition("/")[0].split(":")
    head, bodies = _templates(url, api_key, users)
    total = result.requests
    due = iter(range(total))  # shared by the clients: each request is sent once
    start = loop.time() + 0.3
    result.start = time.time() + (start - loop.time())
    rate = result.rate
    latencies = [math.inf] * total
    lags: list[float] = []
    watched: dict[str, float] = {}  # event id -> scheduled send (loop time), until seen
    seen: list[float] = []
    done = asyncio.Event()

    async def client() -> None:
        reader = writer = None
        used = 0.0
        for k in due:
            scheduled = start + k / rate
            if (wait := scheduled - loop.time()) > 0:
                await asyncio.sleep(wait)
            before, after = random.choice(bodies)
            body = f"{before}{k}{after}".encode()
            if writer is not None and loop.time() - used > IDLE_RECONNECT:
                writer.close()  # the server may be closing it: gunicorn keeps idle ones 2 s
                reader = writer = None
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, int(port))
                lags.append(loop.time() - scheduled)
                writer.write(f"{head}{len(body)}\r\n\r\n".encode() + body)
                answer = await reader.readuntil(b"\r\n\r\n")
                content = await reader.readexactly(int(_LENGTH.search(answer).group(1)))
            except (OSError, asyncio.IncompleteReadError, AttributeError, ValueError):
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            used = loop.time()
            latencies[k] = used - scheduled
            if 200 <= int(answer[9:12]) < 300:
                result.ok += 1
                if visible_every and k % visible_every == 0:
                    watched[orjson.loads(content)["data"]["trigger_event_id"]] = scheduled
            else:
                result.errors += 1
        if writer is not None:
            writer.close()

    async def count_pending(conn) -> None:
        while not done.is_set():
            cursor = await conn.execute(PENDING_SQL)
            (count,) = await cursor.fetchone()
            elapsed = loop.time() - start
            result.pending.append((elapsed, count))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), pending_every)

    async def poll_visible(conn) -> None:
        """Each poll's snapshot is taken as it is sent: a row it sees became visible after
        the previous poll was sent and at or before this one (so the figure errs late, by
        at most one poll interval plus a query)."""
        deadline = math.inf
        while watched or not done.is_set():
            if done.is_set() and deadline == math.inf:
                deadline = loop.time() + visible_timeout
            if loop.time() > deadline:
                break
            if watched:
                sent = loop.time()
                cursor = await conn.execute(_VISIBLE_SQL, [list(watched)])
                for (event_id,) in await cursor.fetchall():
                    seen.append(sent - watched.pop(str(event_id)))
            await asyncio.sleep(POLL_SECONDS)

    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as pending_conn,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as visible_conn,
    ):
        watchers = [asyncio.create_task(count_pending(pending_conn))]
        if visible_every:
            watchers.append(asyncio.create_task(poll_visible(visible_conn)))
        clients = asyncio.gather(*(client() for _ in range(CONNECTIONS)))
        with contextlib.suppress(TimeoutError):  # requests still unanswered count as lost
            await asyncio.wait_for(clients, timeout=result.seconds + 30)
        done.set()
        await asyncio.gather(*watchers)
    result.errors += sum(1 for x in latencies if x == math.inf)  # broken or never answered
    result.latencies = latencies
    result.lags = lags
    result.visible = seen + [math.inf] * len(watched)
