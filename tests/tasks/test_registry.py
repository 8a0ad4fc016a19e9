"""Tests of the @task_function registry: naming, options, refusals, look-up and loading."""

import pytest

from scheduler import registry
from scheduler.registry import TaskNotRegistered, task_function


def test_name_defaults_to_module_and_function(clean_registry):
    @task_function()
    def tidy_up():
        """Tidies up.

        More words that are not the description."""

    spec = registry.get("tests.tasks.test_registry.tidy_up")
    assert spec.name == "tests.tasks.test_registry.tidy_up"
    assert spec.func is tidy_up
    assert spec.description == "Tidies up."


def test_explicit_name_and_options_are_recorded(clean_registry):
    @task_function("reports.build", description="Builds the reports.", offload=True, queue="reports", timeout=600)
    def build():
        return "built"

    spec = registry.get("reports.build")
    assert (spec.description, spec.offload, spec.queue, spec.timeout) == ("Builds the reports.", True, "reports", 600)
    assert build() == "built"  # the decorator hands the function back unchanged


def test_defaults_run_inline_on_the_default_queue_without_timeout(clean_registry, settings):
    settings.SCHEDULER_DEFAULT_QUEUE = "default-q"

    @task_function("plain")
    def plain():
        pass

    spec = registry.get("plain")
    assert (spec.description, spec.offload, spec.queue, spec.timeout) == ("", False, "default-q", None)


def test_duplicate_name_is_refused_and_the_first_stays(clean_registry):
    @task_function("dup.name")
    def first():
        pass

    with pytest.raises(ValueError, match="'dup.name' is registered twice"):

        @task_function("dup.name")
        def second():
            pass

    assert registry.get("dup.name").func is first


def test_registering_the_same_function_again_is_harmless(clean_registry):
    def again():
        pass

    task_function("same.function")(again)
    task_function("same.function")(again)
    assert registry.get("same.function").func is again


@pytest.mark.parametrize("timeout", [0, -1])
def test_timeout_below_one_second_is_refused(clean_registry, timeout):
    with pytest.raises(ValueError, match="at least 1 second"):
        task_function("too.short", timeout=timeout)
    with pytest.raises(TaskNotRegistered):
        registry.get("too.short")


def test_timeout_of_one_second_is_accepted(clean_registry):
    task_function("one.second", timeout=1)(lambda: None)
    assert registry.get("one.second").timeout == 1


def test_unknown_name_is_not_registered():
    with pytest.raises(TaskNotRegistered, match="'os.system'") as exc:
        registry.get("os.system")
    assert isinstance(exc.value, LookupError)


def test_specs_are_sorted_by_name(clean_registry):
    task_function("zzz.last")(lambda: None)
    task_function("aaa.first")(lambda: None)
    names = [spec.name for spec in registry.specs()]
    assert names == sorted(names)
    assert names[0] == "aaa.first" and names[-1] == "zzz.last"


def test_load_imports_the_configured_modules(clean_registry, settings):
    settings.SCHEDULER_TASK_MODULES = ["tasks.functions", "tests.tasks.sample_functions"]
    with pytest.raises(TaskNotRegistered):
        registry.get("tests.tasks.sample_functions.ping")
    registry.load()
    spec = registry.get("tests.tasks.sample_functions.ping")
    assert (spec.description, spec.queue, spec.timeout) == ("Answers pong.", "fast", 5)
    assert spec.func() == "pong"


def test_load_of_a_missing_module_fails_loudly(settings):
    settings.SCHEDULER_TASK_MODULES = ["tasks.no_such_module"]
    with pytest.raises(ModuleNotFoundError):
        registry.load()


def test_shipped_functions_are_registered():
    names = {spec.name for spec in registry.specs()}
    assert {
        "tasks.functions.noop",
        "tasks.functions.echo",
        "tasks.functions.sleep",
        "tasks.functions.sleep_offloaded",
        "tasks.functions.fail",
        "tasks.functions.cleanup_executions",
    } <= names
    assert all(spec.description for spec in registry.specs() if spec.name.startswith("tasks.functions."))


# --- jobs declared beside their function ---------------------------------------------------------


def _report(**kwargs):
    return "report"


def test_declared_schedules_are_bound_to_their_function(clean_registry):
    task_function(
        "tests.declared.report",
        schedules=[
            registry.cron("0 2 * * *", timezone="Europe/Paris", name="nightly report", kwargs={"full": True}),
            registry.interval(minutes=5),
        ],
    )(_report)
    nightly, every_five = sorted(registry.get("tests.declared.report").schedules, key=lambda d: d.name)
    assert (nightly.name, nightly.cron_expression, nightly.timezone, nightly.kwargs) == (
        "nightly report",
        "0 2 * * *",
        "Europe/Paris",
        {"full": True},
    )
    assert nightly.task_name == "tests.declared.report"
    assert nightly.declared_in == "tests.tasks.test_registry._report"
    # Without a name, a schedule is named after its function.
    assert (every_five.name, every_five.interval_minutes, every_five.interval_seconds) == (
        "tests.declared.report",
        5,
        None,
    )
    assert not every_five.is_cron and nightly.is_cron
    assert [d.name for d in registry.declarations() if d.task_name == "tests.declared.report"] == [
        "nightly report",
        "tests.declared.report",
    ]


def test_declared_arguments_are_kept_as_json_gives_them_back(clean_registry):
    declaration = registry.cron("* * * * *", args=(1, ("a", "b")), kwargs={"when": ("x",)})
    assert declaration.args == [1, ["a", "b"]] and declaration.kwargs == {"when": ["x"]}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: registry.cron(""), "needs a cron expression"),
        (lambda: registry.cron(None), "needs a cron expression"),
        (lambda: registry.interval(), "at least one of days, hours, minutes or seconds"),
        (lambda: registry.interval(minutes=-1), r"interval\(minutes=...\) must be a whole number >= 0"),
        (lambda: registry.interval(seconds=1.5), "must be a whole number"),
        (lambda: registry.cron("* * * * *", name=""), "name must be a non-empty string"),
        (lambda: registry.cron("* * * * *", args="abc"), "args must be a list"),
        (lambda: registry.cron("* * * * *", kwargs={1: "x"}), "kwargs must be a dict with string keys"),
        (lambda: registry.cron("* * * * *", kwargs={"f": object()}), "must be JSON values"),
        (lambda: registry.cron("* * * * *", args=[float("nan")]), "must be JSON values"),
        (lambda: registry.cron("* * * * *", priority="high"), "priority must be a whole number"),
        (lambda: registry.cron("* * * * *", coalesce=1), "coalesce must be True or False"),
        (lambda: registry.cron("* * * * *", timezone=3), "timezone must be an IANA name"),
    ],
)
def test_malformed_declarations_fail_at_import(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_schedules_take_only_declarations(clean_registry):
    with pytest.raises(ValueError, match="schedules takes cron"):
        task_function("tests.declared.bad", schedules=["0 2 * * *"])


def test_two_unnamed_schedules_of_one_function_are_refused(clean_registry):
    with pytest.raises(ValueError, match="declares the job 'tests.declared.twice' twice: give each"):
        task_function("tests.declared.twice", schedules=[registry.interval(minutes=1), registry.cron("0 * * * *")])(
            _report
        )
    with pytest.raises(TaskNotRegistered):
        registry.get("tests.declared.twice")


def test_one_job_name_declared_by_two_functions_is_refused(clean_registry):
    task_function("tests.declared.first", schedules=[registry.interval(minutes=1, name="shared")])(_report)

    def other():
        pass

    with pytest.raises(ValueError, match="'shared' is declared twice: by tests.tasks.test_registry._report and"):
        task_function("tests.declared.second", schedules=[registry.interval(minutes=2, name="shared")])(other)


def test_declaring_again_replaces_the_schedules(clean_registry):
    task_function("tests.declared.again", schedules=[registry.interval(minutes=1, name="a")])(_report)
    task_function("tests.declared.again", schedules=[registry.interval(minutes=2, name="a")])(_report)
    assert [d.interval_minutes for d in registry.get("tests.declared.again").schedules] == [2]
