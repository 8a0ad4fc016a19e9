"""The engine's logging off the hot path: records go through a queue to the configured handlers,
written in batches by one thread."""

import logging
import queue
import threading
from logging.handlers import QueueHandler, QueueListener

from scheduler.engine.recorder import deferring

# Log arguments that cannot change after the call: a record holding only these is formatted once,
# by the writer's handlers, instead of once more by QueueHandler.prepare in the logging thread.
_IMMUTABLE_ARGS = (str, int, float, bool, type(None))
# How long records may wait in the queue: the writer wakes this often rather than once per record.
WRITE_INTERVAL = 0.05
THREAD_NAME = "scheduler-log-writer"


class DeferredFormatQueueHandler(QueueHandler):
    """A QueueHandler that leaves the formatting of a plain record to the writer's handlers
    (QueueHandler.prepare is documented as the method to override for what is queued), and that
    takes no lock.

    Handler.handle holds the handler's lock around emit(), which a queue does not need (put is
    thread-safe, and prepare works on its own record). With several worker threads logging a line
    per run, that lock turned into a convoy: a thread switched out while holding it made every
    other thread block on it, and from then on the lock and the GIL changed hands at each record,
    an operating-system thread switch per run. Ten workers started a crowd of runs two to three
    times slower than one (README, Performance).
    """

    def handle(self, record):
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may return a replacement
            record = rv
        if rv:
            self.emit(record)
        return rv

    def prepare(self, record):
        if record.exc_info or record.stack_info:
            return super().prepare(record)  # a traceback is formatted while its frames exist
        args = record.args
        if args and not (isinstance(args, tuple) and all(isinstance(a, _IMMUTABLE_ARGS) for a in args)):
            return super().prepare(record)  # a mutable argument could change before it is formatted
        return record


class BatchLogWriter(threading.Thread):
    """Hands queued records to the handlers every WRITE_INTERVAL, all that piled up at once.

    QueueListener wakes for every record: with a line per run, that was a thread switch per run.
    Its public handle() still decides which handler takes which record.
    """

    def __init__(self, records: queue.SimpleQueue, handlers, interval: float = WRITE_INTERVAL):
        super().__init__(name=THREAD_NAME, daemon=True)
        self.records = records
        self.interval = interval
        self._listener = QueueListener(records, *handlers, respect_handler_level=True)
        self._stopping = threading.Event()
        self.busy = lambda: False  # set by the process: whether runs are waiting for a worker

    def run(self):
        while not self._stopping.wait(self.interval):
            deferring(self.busy, self._stopping)  # formatting waits while a crowd of runs starts
            self.drain()
        self.drain()

    def drain(self) -> None:
        while True:
            try:
                record = self.records.get_nowait()
            except queue.Empty:
                return
            self._listener.handle(record)

    def stop(self) -> None:
        """Write what is queued, then stop (records logged after it are written by nobody)."""
        self._stopping.set()
        self.join()


def logging_off_the_hot_path() -> BatchLogWriter:
    """Route log records through a queue to the configured handlers in one thread: every run logs
    a line, and pool threads waiting on the stream handler's lock slowed every run."""
    root = logging.getLogger()
    records: queue.SimpleQueue = queue.SimpleQueue()
    writer = BatchLogWriter(records, root.handlers)
    root.handlers = [DeferredFormatQueueHandler(records)]
    writer.start()
    return writer
