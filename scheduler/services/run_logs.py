"""The logs of each run: the records a task function emits while it runs (any logger that reaches the
root logger, SCHEDULER_RUN_LOG_LEVEL and above), kept in memory per thread and stored with the run's
end in one write, bounded per run with a marker where records were cut.

Capture is per thread: an engine worker thread or a Celery worker process runs one task function at
a time, and records from threads the function starts itself are not its run's.
"""

import collections
import logging
import threading
from datetime import UTC, datetime

from django.conf import settings

from scheduler.models import ExecutionLog

MAX_MESSAGE_CHARS = 10_000
# What a record costs of the budget beyond its message (time, level, logger).
RECORD_OVERHEAD_CHARS = 60
MARKER_LOGGER = "scheduler.run_logs"
_LEVELS = logging.getLevelNamesMapping()
_state = threading.local()
_formatter = logging.Formatter()


class RunLog:
    """One run's records: the first half of the budget from the start, the last half as a rolling
    tail (the lines before a crash matter most), and a count of what fell between them."""

    __slots__ = ("head", "tail", "head_chars", "tail_chars", "cut", "cut_chars", "half_records", "half_chars")

    def __init__(self, max_records: int, max_chars: int):
        self.head: list[dict] = []
        self.tail: collections.deque = collections.deque()
        self.head_chars = self.tail_chars = self.cut = self.cut_chars = 0
        self.half_records = max(1, max_records // 2)
        self.half_chars = max(1, max_chars // 2)

    def add(self, entry: dict, size: int) -> None:
        if not self.tail and len(self.head) < self.half_records and self.head_chars + size <= self.half_chars:
            self.head.append(entry)
            self.head_chars += size
            return
        self.tail.append((entry, size))
        self.tail_chars += size
        while len(self.tail) > self.half_records or (self.tail_chars > self.half_chars and len(self.tail) > 1):
            _, dropped = self.tail.popleft()
            self.tail_chars -= dropped
            self.cut += 1
            self.cut_chars += dropped

    def records(self) -> list[dict]:
        tail = [entry for entry, _ in self.tail]
        if not self.cut:
            return self.head + tail
        marker = {
            "at": tail[0].get("at", "") if tail else "",
            "level": "WARNING",
            "logger": MARKER_LOGGER,
            "message": (
                f"[{self.cut} log records (about {self.cut_chars} characters) were cut here: a run keeps at most "
                f"{2 * self.half_records} records and {2 * self.half_chars} characters, the first and the last "
                f"(SCHEDULER_RUN_LOG_MAX_RECORDS, SCHEDULER_RUN_LOG_MAX_CHARS)]"
            ),
            "cut": self.cut,
        }
        return [*self.head, marker, *tail]


class RunLogHandler(logging.Handler):
    """On the root logger: hands each record to the run its thread is executing, if any.

    handle() is overridden to take no lock: each thread appends to its own run's log, and a lock
    shared by every thread of the engine is what the engine's logging queue exists to avoid.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        log = getattr(_state, "log", None)
        if log is None or record.levelno < self.level:
            return False
        if log is _STARTED:
            log = _state.log = RunLog(settings.SCHEDULER_RUN_LOG_MAX_RECORDS, settings.SCHEDULER_RUN_LOG_MAX_CHARS)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in the function's own call: keep what was asked
            message = f"{record.msg!r} % {record.args!r}"
        if record.exc_info:
            message = f"{message}\n{_formatter.formatException(record.exc_info)}"
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + f"... [{len(message) - MAX_MESSAGE_CHARS} characters cut]"
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        log.add(entry, len(message) + RECORD_OVERHEAD_CHARS)
        return True

    def emit(self, record):  # handle() does the work
        self.handle(record)


_STARTED = object()  # capturing, nothing logged yet: a run that logs nothing allocates nothing
HANDLER = RunLogHandler()
_root = logging.getLogger()


def run_logs_start() -> None:
    """Capture this thread's log records from now on, for the run it is about to execute."""
    if HANDLER not in _root.handlers:
        # Installed lazily: Celery's worker and the engine both replace the root's handlers at start.
        _root.addHandler(HANDLER)
    HANDLER.level = _LEVELS[settings.SCHEDULER_RUN_LOG_LEVEL]
    _state.log = _STARTED


def run_logs_stop() -> tuple[list[dict], int] | None:
    """Stop capturing; the records (with the cut marker, if any) and how many were cut, or None."""
    log = getattr(_state, "log", None)
    _state.log = None
    if log is None or log is _STARTED:
        return None
    return log.records(), log.cut


def run_logs_save(logs_by_execution: dict[int, tuple[list[dict], int]]) -> None:
    """Store runs' logs (one statement for a whole batch); a log already stored is kept."""
    if logs_by_execution:
        ExecutionLog.objects.bulk_create(
            [
                ExecutionLog(execution_id=pk, records=records, cut=cut)
                for pk, (records, cut) in logs_by_execution.items()
            ],
            ignore_conflicts=True,
        )
