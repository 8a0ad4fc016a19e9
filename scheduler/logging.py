"""Log record context (job, execution, scheduler instance) and a JSON formatter; chosen by LOG_FORMAT."""

import contextlib
import contextvars
import json
import logging
import time
import traceback
from datetime import UTC, datetime

CONTEXT_FIELDS = ("job_id", "execution_id", "instance_id")
MISSING = "-"

# The default is never changed in place: log_context sets a new dict each time.
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("scheduler_log_context", default={})  # noqa: B039

# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept in JSON.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


@contextlib.contextmanager
def log_context(**fields):
    """Give every record logged inside the block these context fields, unless `extra=` sets them.

    For code that cannot pass `extra=` on each call (a run's task function, services it calls).
    Context variables do not follow work into other threads: set it in the thread that logs.
    """
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown log context fields: {', '.join(sorted(unknown))}")
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Give every record job_id, execution_id and instance_id, "-" when nobody set them.

    Attached to the handlers, so it covers records from every logger, and both formats can name
    the fields without a KeyError.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            current = getattr(record, name, None)
            if current is None or current == "":
                setattr(record, name, bound.get(name, MISSING))
        return True


class PlainFormatter(logging.Formatter):
    """logging.Formatter with the default time format, the formatted second kept for the records
    logged within it (time.strftime per record was most of formatting the one line per run)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._second = None
        self._second_text = ""
        self._uses_time = super().usesTime()

    def usesTime(self):
        return self._uses_time

    def formatTime(self, record, datefmt=None):
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            # Assigned together as one tuple would be, but the pair is only ever read here, by
            # the one thread a handler formats in (Handler.handle holds its lock).
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._second_text, record.msecs)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, context fields, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            entry[name] = getattr(record, name, MISSING)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["error"] = "".join(traceback.format_exception_only(*record.exc_info[:2])).strip()
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a datetime, a model) still logs, as text.
        return json.dumps(entry, default=str, ensure_ascii=False)
