"""run_admit: what each overlap policy decides for a due run, by how full its job is and how many
runs already wait, and how it counts the run it admits."""

from dataclasses import dataclass

import pytest

from scheduler.enums import BUFFER_LIMIT, OVERLAP_WAITING_LIMIT, ExecutionStatus, OverlapPolicy
from scheduler.services.overlap import Occupancy, buffers, run_admit

PENDING, WAITING, SKIPPED = ExecutionStatus.PENDING, ExecutionStatus.WAITING, ExecutionStatus.SKIPPED
JOB_ID = 7


@dataclass
class Job:
    """What run_admit reads of a job (a model or a claimed row)."""

    overlap_policy: str
    max_instances: int = 1
    pk: int = JOB_ID


def admit(policy, *, held=0, waiting=0, max_instances=1):
    occupancy = Occupancy(held={JOB_ID: held} if held else {}, waiting={JOB_ID: waiting} if waiting else {})
    admission = run_admit(Job(policy, max_instances), occupancy)
    return admission, occupancy


# (policy, live leases, waiting runs) -> (status, stop the oldest?) with max_instances = 2
TABLE = [
    # not full, none waiting: every policy starts the run
    *[(policy, 1, 0, PENDING, False) for policy in OverlapPolicy],
    # full, none waiting
    (OverlapPolicy.SKIP, 2, 0, SKIPPED, False),
    (OverlapPolicy.BUFFER_ONE, 2, 0, WAITING, False),
    (OverlapPolicy.BUFFER_ALL, 2, 0, WAITING, False),
    (OverlapPolicy.CANCEL_OTHER, 2, 0, WAITING, True),
    (OverlapPolicy.TERMINATE_OTHER, 2, 0, WAITING, True),
    (OverlapPolicy.ALLOW_ALL, 2, 0, PENDING, False),
    # full, one waiting: the policies keeping one skip; buffer_all queues behind it
    (OverlapPolicy.SKIP, 2, 1, SKIPPED, False),
    (OverlapPolicy.BUFFER_ONE, 2, 1, SKIPPED, False),
    (OverlapPolicy.BUFFER_ALL, 2, 1, WAITING, False),
    (OverlapPolicy.CANCEL_OTHER, 2, 1, SKIPPED, False),
    (OverlapPolicy.TERMINATE_OTHER, 2, 1, SKIPPED, False),
    (OverlapPolicy.ALLOW_ALL, 2, 1, PENDING, False),
    # a free slot but a run already waiting: the new run never overtakes it
    (OverlapPolicy.SKIP, 1, 1, PENDING, False),  # skip keeps no waiting runs; it only counts leases
    (OverlapPolicy.BUFFER_ONE, 1, 1, SKIPPED, False),
    (OverlapPolicy.BUFFER_ALL, 1, 1, WAITING, False),
    (OverlapPolicy.CANCEL_OTHER, 1, 1, SKIPPED, False),
    (OverlapPolicy.TERMINATE_OTHER, 1, 1, SKIPPED, False),
    (OverlapPolicy.ALLOW_ALL, 1, 1, PENDING, False),
    # a free slot, a run waiting and room for one more: it waits, and asks nobody to stop
    (OverlapPolicy.BUFFER_ALL, 0, 5, WAITING, False),
    # far beyond max_instances: allow_all has no limit at all
    (OverlapPolicy.ALLOW_ALL, 50, 0, PENDING, False),
    # the waiting limit of buffer_all
    (OverlapPolicy.BUFFER_ALL, 2, BUFFER_LIMIT - 1, WAITING, False),
    (OverlapPolicy.BUFFER_ALL, 2, BUFFER_LIMIT, SKIPPED, False),
]


@pytest.mark.parametrize("policy, held, waiting, status, stop_oldest", TABLE)
def test_run_admit_table(policy, held, waiting, status, stop_oldest):
    admission, _ = admit(policy, held=held, waiting=waiting, max_instances=2)

    assert (admission.status, admission.stop_oldest) == (status, stop_oldest)
    assert bool(admission.reason) == (status != PENDING), admission.reason


@pytest.mark.parametrize("policy", list(OverlapPolicy))
def test_every_policy_is_in_the_table_in_each_situation(policy):
    situations = {(held, waiting) for p, held, waiting, *_ in TABLE if p == policy}
    assert {(1, 0), (2, 0), (2, 1), (1, 1)} <= situations


def test_an_admitted_run_is_counted_as_held_and_a_waiting_one_as_waiting():
    occupancy = Occupancy()
    job = Job(OverlapPolicy.BUFFER_ALL, max_instances=1)

    decisions = [run_admit(job, occupancy).status for _ in range(4)]

    assert decisions == [PENDING, WAITING, WAITING, WAITING]
    assert occupancy.held == {JOB_ID: 1}
    assert occupancy.waiting == {JOB_ID: 3}


def test_buffer_one_keeps_one_run_waiting_and_skips_the_rest_in_one_claim():
    occupancy = Occupancy()
    job = Job(OverlapPolicy.BUFFER_ONE, max_instances=1)

    assert [run_admit(job, occupancy).status for _ in range(4)] == [PENDING, WAITING, SKIPPED, SKIPPED]
    assert occupancy.waiting == {JOB_ID: 1}


def test_skipped_runs_count_against_nothing():
    occupancy = Occupancy(held={JOB_ID: 1})
    job = Job(OverlapPolicy.SKIP, max_instances=1)

    for _ in range(3):
        assert run_admit(job, occupancy).status == SKIPPED
    assert occupancy == Occupancy(held={JOB_ID: 1})


def test_allow_all_counts_every_run_it_starts():
    occupancy = Occupancy()
    job = Job(OverlapPolicy.ALLOW_ALL, max_instances=1)

    assert [run_admit(job, occupancy).status for _ in range(3)] == [PENDING] * 3
    assert occupancy.held == {JOB_ID: 3}


def test_other_jobs_slots_do_not_count():
    occupancy = Occupancy(held={JOB_ID + 1: 5}, waiting={JOB_ID + 1: 5})

    assert run_admit(Job(OverlapPolicy.BUFFER_ONE), occupancy).status == PENDING


def test_reasons_say_what_happened_and_under_which_policy():
    skipped, _ = admit(OverlapPolicy.SKIP, held=1)
    waiting, _ = admit(OverlapPolicy.BUFFER_ALL, held=1)
    beyond, _ = admit(OverlapPolicy.BUFFER_ONE, held=1, waiting=1)
    several, _ = admit(OverlapPolicy.BUFFER_ALL, held=1, waiting=BUFFER_LIMIT)

    assert skipped.reason == "skipped: max_instances (1) runs of this job were in progress (overlap policy skip)"
    assert waiting.reason == "waiting: max_instances (1) runs of this job were in progress (overlap policy buffer_all)"
    assert beyond.reason == (
        "skipped: 1 run of this job already waiting, the most its overlap policy (buffer_one) keeps"
    )
    assert several.reason.startswith(f"skipped: {BUFFER_LIMIT} runs of this job already waiting")


def test_the_policies_that_buffer_are_those_with_a_waiting_limit():
    assert {p for p in OverlapPolicy if buffers(p)} == set(OVERLAP_WAITING_LIMIT)
    assert OVERLAP_WAITING_LIMIT == {
        OverlapPolicy.BUFFER_ONE: 1,
        OverlapPolicy.BUFFER_ALL: BUFFER_LIMIT,
        OverlapPolicy.CANCEL_OTHER: 1,
        OverlapPolicy.TERMINATE_OTHER: 1,
    }
