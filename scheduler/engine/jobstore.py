"""An APScheduler job store backed by the ScheduledJob table itself, with no pickled copies.

Each call to get_due_jobs claims due runs through the database (see services.claims) and hands
them straight to the executor (`submit`); APScheduler's loop only decides when to call it again.
The schedule itself never lives in memory, so every process sees edits at its next wake-up and
start-up costs nothing per job.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import BaseJobStore
from django.conf import settings
from django.db import connection

from scheduler import clock
from scheduler.backends import backend
from scheduler.models import ScheduledJob
from scheduler.services.claims import MAX_RUNS_PER_CLAIM, ClaimedRun, runs_claim

logger = logging.getLogger("scheduler.engine")
# Claim transactions in flight at once while a backlog of due runs lasts.
CLAIM_LANES = 3
CLAIM_LANE_PREFIX = "scheduler-claim"
# This many jobs starting within one second (CROWD_WINDOW) are a crowd (a minute boundary of a large
# fleet): more than the short look-ahead leaves time to claim, so they are claimed from
# SCHEDULER_CLAIM_AHEAD_CROWD seconds before.
CROWD_SIZE = 1000
CROWD_WINDOW = timedelta(seconds=1)
# The loop looks for crowds this often, each look covering SCHEDULER_CLAIM_AHEAD_CROWD, this much
# and a second beyond, and wakes for the next look itself, so every crowd is seen a whole crowd
# look-ahead before it. (Waiting for whatever woke the loop next, up to a poll interval, found a
# crowd as little as a second before it on an idle fleet, too late to claim a million-job boundary.)
CROWD_LOOK_EVERY = timedelta(seconds=5)
# Jobs one claim takes while claiming a crowd: each pass reads the crowd's whole window, so fewer,
# larger passes claim it sooner (a claim writes at most MAX_RUNS_PER_CLAIM runs either way).
CROWD_BATCH_SIZE = MAX_RUNS_PER_CLAIM
# A claim happens this share of the look-ahead before the first start it takes, and takes what
# starts up to a whole look-ahead from then: the rest of the look-ahead is what one claim shares
# among the runs of a window, the lead what a claim may take without starting them late.
CLAIM_LEAD_SHARE = 0.25


class DatabaseJobStore(BaseJobStore):
    def __init__(self, *, instance_id: str, submit, on_claimed, batch_size: int, guard, before_claim=None):
        super().__init__()
        self.guard = guard  # the watchdog's: cuts a database call stuck on a dead connection
        self.instance_id = instance_id
        self.submit = submit  # RunQueueExecutor.runs_submit
        self.on_claimed = on_claimed
        # The recorder's flush: this process's ended runs free their slots before it claims.
        self.before_claim = before_claim or (lambda: None)
        self.batch_size = batch_size
        self.claiming = True  # switched off by stop_claiming(): a stop never claims a run
        # Held for a whole claim pass, up to handing its runs to on_claimed.
        self._claim_pass = threading.Lock()
        self._more_due = False
        self.ahead = timedelta(seconds=settings.SCHEDULER_CLAIM_AHEAD)
        self.lead = self.ahead * CLAIM_LEAD_SHARE
        self.crowd_ahead = timedelta(seconds=settings.SCHEDULER_CLAIM_AHEAD_CROWD)
        # The end of a crowd's window while it is being claimed ahead (database clock), else None.
        self._crowd_until = None
        # Up to when the last look found no crowd (database clock): no need to look again before.
        self._calm_until = None
        # Where the last crowd's claims reached (database clock): a look finds only crowds after it.
        self._crowds_after = None
        # The look-ahead of the last claim that claimed all it could (database clock).
        self._passed_until = None
        # While a backlog lasts, extra claim transactions run side by side on their own
        # connections (SKIP LOCKED keeps them apart), so one claim's database round trips
        # overlap another's work instead of the loop waiting on each in turn.
        self._lanes = ThreadPoolExecutor(max_workers=CLAIM_LANES - 1, thread_name_prefix=CLAIM_LANE_PREFIX)

    def stop_claiming(self) -> None:
        """Claim nothing more, and return once a claim pass in progress has handed over its runs."""
        self.claiming = False
        with self._claim_pass:
            pass

    def get_due_jobs(self, now):
        with self._claim_pass:
            if not self.claiming:
                return []
            self.before_claim()
            # Due is decided on the database's clock; APScheduler's `now` is this host's.
            database_now = clock.now()
            ahead_until = database_now + self.ahead
            batch_size = self.batch_size
            # A crowd seen coming is claimed from a crowd look-ahead before it, not whenever the loop
            # wakes after it was seen (up to CROWD_LOOK_EVERY sooner): claimed earlier, more of its
            # jobs would still have a run in progress and be left for their time.
            if self._crowd_until is not None and database_now >= self._crowd_claim_from():
                ahead_until = max(ahead_until, self._crowd_until)
                batch_size = max(batch_size, CROWD_BATCH_SIZE)
            extra = (
                [self._lanes.submit(self._claim, database_now, ahead_until, batch_size) for _ in range(CLAIM_LANES - 1)]
                if self._more_due
                else []
            )
            claimed, errors = [], []
            for outcome in [
                lambda: self._claim(database_now, ahead_until, batch_size),
                *(lane.result for lane in extra),
            ]:
                try:
                    claimed += outcome()
                except Exception as exc:
                    errors.append(exc)
            if errors and not claimed:
                raise errors[0]  # APScheduler logs it and asks again shortly
            for exc in errors:
                # Each claim committed on its own: the runs the others claimed must still run here.
                logger.error("A claim failed (%s); the %d runs claimed beside it go ahead", exc, len(claimed))
            claimed.sort(key=ClaimedRun.dispatch_order)
            self.on_claimed(claimed)
            # A run claimed ahead starts at its time, by this host's clock.
            offset = clock.offset().total_seconds()
            self.submit([(None if run.start_at is None else run.start_at.timestamp() - offset, run) for run in claimed])
        # A full batch means more may be due right now: skip the next-run-time read, loop at once.
        self._more_due = len(claimed) >= batch_size
        self._passed_until = None if self._more_due else ahead_until
        if not self._more_due and self._crowd_until is not None and ahead_until >= self._crowd_until:
            self._crowd_until = None  # claimed to its end (what is left had runs in progress)
            # Look for the next crowd now, before this one starts (one may follow in the next
            # second; a look due while this one is being started would take the GIL from the
            # workers starting it), among starts after this one's claims reached.
            self._calm_until, self._crowds_after = None, ahead_until
        return []  # handed to the executor already: APScheduler has nothing to submit

    def _claim(self, now, ahead_until, batch_size):
        try:
            with self.guard("claim"):
                return runs_claim(instance_id=self.instance_id, now=now, batch_size=batch_size, ahead_until=ahead_until)
        except Exception:
            connection.close()  # a dropped connection is reopened on the next call
            raise

    def get_next_run_time(self):
        if not self.claiming:
            return None
        if self._more_due:
            return datetime.now(UTC)
        try:
            with self.guard("next run time"):
                # Manual and released runs are due at once; a retry, once its backoff has passed.
                # A jittered fire time starts later than the fire time.
                database_now = clock.now()
                unclaimed_due, unclaimed_at, next_run_time = backend().next_claim_times(database_now)
                if unclaimed_due:
                    return datetime.now(UTC)
                if next_run_time is not None:
                    next_run_time = self._claim_time(next_run_time, database_now)
            times = [t for t in (next_run_time, unclaimed_at) if t is not None]
            # APScheduler waits by this host's clock until a time on the database's.
            return min(times) - clock.offset() if times else None
        except Exception:
            connection.close()
            logger.exception("Could not read the next run time; retrying shortly.")
            return datetime.now(UTC)

    def _claim_time(self, start: datetime, database_now: datetime) -> datetime:
        """When to claim again, for the job starting first at `start`: a lead before it (the claim
        then takes a look-ahead's worth of runs from there), or before a crowd coming sooner. On
        the database's clock."""
        if start <= database_now:
            return database_now
        crowd = self._crowd_coming(database_now)
        if crowd is not None:
            self._crowd_until = crowd + CROWD_WINDOW
            return max(database_now, min(start - self.lead, self._crowd_claim_from()))
        if self._passed_until is not None and start <= self._passed_until:
            # Within the last claim's look-ahead yet not claimed: it had a run in progress, so it
            # is claimed at its time (claiming again before then would find it the same).
            claim_at = start
        else:
            claim_at = max(database_now, start - self.lead)
        return min(claim_at, self._calm_until)  # or sooner, to look for crowds again in time

    def _crowd_claim_from(self) -> datetime:
        """When the crowd seen coming starts being claimed: a crowd look-ahead before it."""
        return self._crowd_until - CROWD_WINDOW - self.crowd_ahead

    def _crowd_coming(self, database_now: datetime) -> datetime | None:
        """The start of the first crowd within the crowd look-ahead and CROWD_LOOK_EVERY (and a
        second) beyond it; None sets when to look again (_calm_until)."""
        if self._crowd_until is not None:
            return self._crowd_until - CROWD_WINDOW  # being claimed
        if self._calm_until is not None and database_now < self._calm_until:
            return None
        after = database_now if self._crowds_after is None else max(database_now, self._crowds_after)
        # A second more than the next look's turn: a crowd is counted once its whole second is in
        # the look, and the loop may wake for that look a little late.
        crowd = ScheduledJob.objects.crowd_start(
            after, database_now + self.crowd_ahead + CROWD_LOOK_EVERY + CROWD_WINDOW, size=CROWD_SIZE
        )
        self._calm_until = database_now + CROWD_LOOK_EVERY  # once the look worked: a failed one is retried
        return crowd

    # The schedule is the jobs table, edited through the service layer; APScheduler never owns it.
    def lookup_job(self, job_id):
        return None

    def get_all_jobs(self):
        return []

    def add_job(self, job):
        raise NotImplementedError("Jobs are created through scheduler.services.jobs, not APScheduler.")

    def update_job(self, job):
        """Single-shot jobs are never updated; the claim already advanced the row."""

    def remove_job(self, job_id):
        """Single-shot jobs vanish once submitted."""

    def remove_all_jobs(self):
        """Nothing is held in memory."""
