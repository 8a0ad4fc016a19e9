"""Structured logs: context fields on every record, the JSON formatter, LOG_FORMAT in settings."""

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings

from scheduler.logging import ContextFilter, JsonFormatter, PlainFormatter, log_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def capture():
    """A logger wired like the console handler, writing to a buffer; returns (logger, buffer, handler)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.structured")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, buffer, handler
    logger.removeHandler(handler)


def lines(buffer):
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_context_and_extras(capture):
    logger, buffer, handler = capture
    handler.setFormatter(JsonFormatter())
    logger.info("run %s done", 7, extra={"job_id": 3, "execution_id": 7, "instance_id": "host-1", "attempt": 2})
    logger.warning("no context here")
    first, second = lines(buffer)
    assert first["message"] == "run 7 done"
    assert first["level"] == "INFO" and first["logger"] == "tests.structured"
    assert (first["job_id"], first["execution_id"], first["instance_id"]) == (3, 7, "host-1")
    assert first["attempt"] == 2
    assert first["time"].endswith("+00:00")
    assert (second["job_id"], second["execution_id"], second["instance_id"]) == ("-", "-", "-")


def test_json_keeps_exceptions_and_odd_extras(capture):
    logger, buffer, handler = capture
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("bad input")
    except ValueError:
        logger.exception("it failed", extra={"when": settings})
    (entry,) = lines(buffer)
    assert entry["error"] == "ValueError: bad input"
    assert "Traceback (most recent call last)" in entry["traceback"]
    assert isinstance(entry["when"], str)


def test_plain_format_names_the_context(capture):
    logger, buffer, handler = capture
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]))
    logger.info("claimed", extra={"job_id": 5, "instance_id": "host-2"})
    assert "[job=5 execution=- instance=host-2] claimed" in buffer.getvalue()


def test_plain_formatter_writes_what_the_standard_formatter_writes_across_seconds():
    fmt = settings.LOGGING["formatters"]["plain"]["format"]
    assert settings.LOGGING["formatters"]["plain"]["class"] == "scheduler.logging.PlainFormatter"
    ours, standard = PlainFormatter(fmt), logging.Formatter(fmt)
    base = 1_790_000_000.0
    # Within a second, into the next, back (a record created earlier but formatted later), a datefmt.
    for created in (base + 0.001, base + 0.999, base + 1.5, base + 0.25, base + 86_400.75):
        record = logging.LogRecord("tests.plain", logging.INFO, __file__, 1, "run %s", (7,), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        ContextFilter().filter(record)
        assert ours.format(record) == standard.format(record)
        assert ours.formatTime(record, "%H:%M") == standard.formatTime(record, "%H:%M")
    assert PlainFormatter("%(message)s").usesTime() is False


def test_log_context_applies_inside_the_block_only(capture):
    logger, buffer, handler = capture
    handler.setFormatter(JsonFormatter())
    with log_context(job_id=1, execution_id=2):
        logger.info("inside")
        logger.info("explicit wins", extra={"execution_id": 99})
        with log_context(instance_id="host-3"):
            logger.info("nested")
    logger.info("after")
    inside, explicit, nested, after = lines(buffer)
    assert (inside["job_id"], inside["execution_id"]) == (1, 2)
    assert explicit["execution_id"] == 99
    assert (nested["job_id"], nested["instance_id"]) == (1, "host-3")
    assert after["job_id"] == "-"


def test_log_context_does_not_leak_between_threads(capture):
    logger, buffer, handler = capture
    handler.setFormatter(JsonFormatter())
    with log_context(job_id=1):
        worker = threading.Thread(target=logger.info, args=("from a thread",))
        worker.start()
        worker.join(timeout=10)
    assert lines(buffer)[0]["job_id"] == "-"


def test_log_context_refuses_unknown_fields():
    with pytest.raises(TypeError, match="job"):
        with log_context(jobid=1):
            pass


def run_settings(env_value):
    """Start a process with LOG_FORMAT set, log one line, return it (stderr) and the exit code."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('scheduler.engine').info('tick', extra={'job_id': 4})"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": env_value}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    return result.returncode, result.stderr.strip()


def test_log_format_json_setting():
    code, output = run_settings("json")
    assert code == 0, output
    entry = json.loads(output.splitlines()[-1])
    assert entry["message"] == "tick" and entry["job_id"] == 4 and entry["instance_id"] == "-"


def test_log_format_plain_is_the_default():
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    code = "import django, logging; django.setup(); logging.getLogger('x').info('tick')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("INFO x [job=- execution=- instance=-] tick")
    # An empty value (a bare `LOG_FORMAT=` line in .env) means the default too.
    code, output = run_settings("")
    assert code == 0 and output.endswith("INFO scheduler.engine [job=4 execution=- instance=-] tick")


def test_unknown_log_format_is_refused():
    code, output = run_settings("xml")
    assert code != 0
    assert "LOG_FORMAT must be 'plain' or 'json', not 'xml'" in output
