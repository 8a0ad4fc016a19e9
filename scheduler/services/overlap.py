"""Overlap policies: whether a due run starts, waits for a slot or is skipped when its job is full."""

from dataclasses import dataclass, field

from scheduler.enums import OVERLAP_WAITING_LIMIT, ExecutionStatus, OverlapPolicy

STOPS_OLDEST = {OverlapPolicy.CANCEL_OTHER: False, OverlapPolicy.TERMINATE_OTHER: True}  # value: terminate?


@dataclass(slots=True)
class Occupancy:
    """Per job, what its max_instances slots hold right now, as one claim counts them: live leases
    and waiting runs. Callers hold the jobs' row locks, which serialise the counting across processes."""

    held: dict[int, int] = field(default_factory=dict)
    waiting: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Admission:
    status: str  # pending (starts now, with a lease), waiting or skipped
    reason: str = ""
    # cancel_other / terminate_other: ask the oldest run in progress to stop (terminate: at once).
    stop_oldest: bool = False


START = Admission(ExecutionStatus.PENDING)


def buffers(policy: str) -> bool:
    """Whether the policy keeps runs waiting (so a claim must count the job's waiting runs)."""
    return policy in OVERLAP_WAITING_LIMIT


def run_admit(job, occupancy: Occupancy) -> Admission:
    """Decide one due run of `job` (a model or a claimed row) under its overlap policy, and count it."""
    policy = job.overlap_policy
    if policy == OverlapPolicy.ALLOW_ALL:
        occupancy.held[job.pk] = occupancy.held.get(job.pk, 0) + 1
        return START
    held = occupancy.held.get(job.pk, 0)
    full = held >= job.max_instances
    limit = OVERLAP_WAITING_LIMIT.get(policy)
    if limit is None:  # skip
        if full:
            return Admission(ExecutionStatus.SKIPPED, _full_reason("skipped", job))
        occupancy.held[job.pk] = held + 1
        return START
    waiting = occupancy.waiting.get(job.pk, 0)
    if not full and not waiting:
        occupancy.held[job.pk] = held + 1
        return START
    # Runs wait their turn behind those already waiting, in fire-time order.
    if waiting >= limit:
        return Admission(
            ExecutionStatus.SKIPPED,
            f"skipped: {waiting} run{'s' if waiting != 1 else ''} of this job already waiting, the most its "
            f"overlap policy ({policy}) keeps",
        )
    occupancy.waiting[job.pk] = waiting + 1
    return Admission(ExecutionStatus.WAITING, _full_reason("waiting", job), stop_oldest=full and policy in STOPS_OLDEST)


def _full_reason(outcome: str, job) -> str:
    return (
        f"{outcome}: max_instances ({job.max_instances}) runs of this job were in progress "
        f"(overlap policy {job.overlap_policy})"
    )
