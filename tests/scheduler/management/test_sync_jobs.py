"""Tests of `manage.py sync_jobs`: its report and exit codes, and several OS processes syncing at once."""

import os
import subprocess
import sys
from collections import Counter
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from scheduler.models import ScheduledJob
from scheduler.registry import cron, interval
from scheduler.services.jobs import job_pause
from tests.factories import DECLARED_TASK, declared_jobs
from tests.scheduler.engine.conftest import database_url, engine_db, wait_until  # noqa: F401 (engine_db: fixture)

SAMPLE_MODULES = "tasks.functions,tests.scheduler.declared_sample_jobs"
# Waits at a barrier (a folder each process marks) so that the syncs start together, then syncs.
SYNC_AT_BARRIER = """
import os, sys, time
import django
django.setup()
from django.core.management import call_command
barrier, me, parties = sys.argv[1], sys.argv[2], int(sys.argv[3])
open(os.path.join(barrier, me), "w").close()
deadline = time.monotonic() + 60
while len(os.listdir(barrier)) < parties and time.monotonic() < deadline:
    time.sleep(0.002)
call_command("sync_jobs")
"""


def sync(*args) -> list[str]:
    out = StringIO()
    call_command("sync_jobs", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_prints_each_change_and_a_summary(clean_registry):
    declared_jobs(cron("0 2 * * *", name="nightly"), interval(minutes=5, name="poll"))
    clean_registry.task_function(DECLARED_TASK, schedules=[cron("0 3 * * *", name="nightly")])(
        clean_registry.get(DECLARED_TASK).func
    )
    assert sync("--dry-run") == [
        "would update: nightly (changed: cron_expression)",
        "would disable: poll (its declaration in tests.factories.declared_task is gone)",
        "Dry run, nothing written: declared jobs would be 0 created, 1 updated, 0 taken over, 0 re-declared, "
        "1 disabled, 0 deleted, 0 unchanged.",
    ]
    assert ScheduledJob.objects.get(name="nightly").cron_expression == "0 2 * * *"
    assert sync()[-1] == (
        "Declared jobs in sync: 0 created, 1 updated, 0 taken over, 0 re-declared, 1 disabled, 0 deleted, 0 unchanged."
    )
    assert (
        sync("--prune")[0]
        == "deleted: poll (its declaration in tests.factories.declared_task is gone; its history stays)"
    )


@pytest.mark.django_db
def test_an_invalid_declaration_exits_2_after_syncing_the_others(clean_registry):
    from scheduler.registry import task_function

    task_function(DECLARED_TASK, schedules=[cron("0 2 * * *", name="fine"), cron("0 25 * * *", name="broken")])(
        lambda **kwargs: None
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 declared job is invalid") as exc:
        call_command("sync_jobs", stdout=out)
    assert exc.value.returncode == 2
    assert "invalid, left as it is: broken (" in out.getvalue()
    assert ScheduledJob.objects.active().filter(name="fine").exists()


def _start_sync(barrier, me: str, parties: int, extra_env: dict) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "SCHEDULER_TASK_MODULES": SAMPLE_MODULES,
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-c", SYNC_AT_BARRIER, str(barrier), me, str(parties)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outputs(procs) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
        outputs.append(out)
    return outputs


def _summary(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.mark.usefixtures("engine_db")
@pytest.mark.parametrize("parties", [2, 3])
def test_processes_syncing_at_once_create_each_job_once(tmp_path, parties):
    count = 120  # enough work that the syncs overlap in time
    env = {"TEST_DECLARED_JOB_COUNT": str(count)}
    procs = [_start_sync(tmp_path, f"p{i}", parties, env) for i in range(parties)]
    summaries = sorted(_summary(output) for output in _outputs(procs))
    jobs = count + 1  # and the interval job
    names = Counter(ScheduledJob.objects.active().filter(name__startswith="declared ").values_list("name", flat=True))
    assert len(names) == jobs and set(names.values()) == {1}, names.most_common(3)
    # One process created them all; each of the others, syncing after it, found them in sync.
    head = "Declared jobs in sync:"
    created = f"{head} {jobs} created, 0 updated, 0 taken over, 0 re-declared, 0 disabled, 0 deleted, 0 unchanged."
    in_sync = f"{head} 0 created, 0 updated, 0 taken over, 0 re-declared, 0 disabled, 0 deleted, {jobs} unchanged."
    assert summaries == sorted([created] + [in_sync] * (parties - 1))

    # A new version of the code reaches several processes at once: each change is made once.
    (tmp_path / "second").mkdir()
    env = {"TEST_DECLARED_JOB_COUNT": str(count - 20), "TEST_DECLARED_JOB_HOUR": "4"}
    procs = [_start_sync(tmp_path / "second", f"p{i}", parties, env) for i in range(parties)]
    summaries = sorted(_summary(output) for output in _outputs(procs))
    changed = (
        f"Declared jobs in sync: 0 created, {count - 20} updated, 0 taken over, 0 re-declared, 20 disabled, "
        f"0 deleted, 1 unchanged."
    )
    in_sync = (
        f"Declared jobs in sync: 0 created, 0 updated, 0 taken over, 0 re-declared, 0 disabled, 0 deleted, "
        f"{count - 19} unchanged."
    )
    assert summaries == sorted([changed] + [in_sync] * (parties - 1))
    declared = ScheduledJob.objects.active().filter(name__startswith="declared ", job_type_id=2)
    assert declared.filter(is_enabled=True, cron_expression__endswith=" 4 * * *").count() == count - 20
    assert declared.filter(is_enabled=False, declaration_removed_at__isnull=False).count() == 20


@pytest.mark.postgres
@pytest.mark.usefixtures("engine_db")
def test_a_sync_waits_for_an_operators_edit_and_keeps_it(tmp_path):
    first = _start_sync(tmp_path, "only", 1, {})
    _outputs([first])
    job = ScheduledJob.objects.get(name="declared 000")
    (tmp_path / "second").mkdir()
    with transaction.atomic():
        # An operator's pause, not yet committed, holds the job's row while a new version syncs.
        job_pause(job, reason="operator, during the deploy")
        proc = _start_sync(tmp_path / "second", "only", 1, {"TEST_DECLARED_JOB_HOUR": "5"})

        def sync_waits_on_the_row():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot otherwise
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                return cursor.fetchone()[0] > 0 or proc.poll() is not None

        wait_until(sync_waits_on_the_row, 60, "the sync to wait on the operator's row lock")
        assert proc.poll() is None, proc.communicate()
    [output] = _outputs([proc])
    assert "updated: declared 000 (changed: cron_expression)" in output
    job.refresh_from_db()
    assert job.cron_expression == "0 5 * * *"
    assert (job.is_paused, job.pause_reason) == (True, "operator, during the deploy")
