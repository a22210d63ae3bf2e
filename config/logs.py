"""Log lines as JSON (``LOG_FORMAT=json``), and the trigger events a line is about.

Code that works on events says so around the work (``events_logged``) or on the line
(``extra=event_extra(id)``); every line written meanwhile, ours or a library's, then carries
``trigger_event_id`` (one event) or ``trigger_event_ids`` (a batch). Plain text, the default
for development, leaves them out.

The JSON line has a fixed set of fields, never the record's arbitrary attributes: what a
library attaches to a record (a request, its headers) does not reach the logs by accident.
"""

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

_events: ContextVar[tuple[str, ...]] = ContextVar("trigger_event_ids", default=())
# A batch line names at most this many events (a batch is up to EVENT_BATCH_SIZE).
MAX_IDS = 100


@contextlib.contextmanager
def events_logged(ids: Iterable) -> Iterator[None]:
    """Lines logged in this block (this thread or task) are about these trigger events."""
    token = _events.set(tuple(str(i) for i in ids))
    try:
        yield
    finally:
        _events.reset(token)


def event_extra(event_id) -> dict:
    """``logger.info(..., extra=event_extra(event.id))``: this line is about that event."""
    return {"trigger_event_id": str(event_id)}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the events it is
    about, the process, and the exception's traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        line.update(_about(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _about(record: logging.LogRecord) -> dict:
    single = getattr(record, "trigger_event_id", None)
    if single is not None:
        return {"trigger_event_id": str(single)}
    ids = _events.get()
    if len(ids) == 1:
        return {"trigger_event_id": ids[0]}
    if ids:
        return {"trigger_event_ids": list(ids[:MAX_IDS]), "trigger_events": len(ids)}
    return {}
