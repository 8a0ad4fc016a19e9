"""Settings come from the environment; production values pass `check --deploy` with no warning."""

import os
import subprocess
import sys

import pytest
import yaml
from django.conf import settings

MANAGE = os.path.join(settings.BASE_DIR, "manage.py")
PRODUCTION_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "scheduler.example.com",
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
    "SCHEDULER_METRICS_TOKEN": "a-long-random-metrics-token-0123456789-abcdefghij",
}


def _manage(*args, env):
    return subprocess.run(
        [sys.executable, MANAGE, *args], env=env, capture_output=True, text=True, cwd=settings.BASE_DIR
    )


def test_check_deploy_passes_with_production_values():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("token", "warning"),
    [("", "scheduler.W001"), ("short", "scheduler.W002")],
)
def test_check_deploy_asks_for_a_metrics_token(token, warning):
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION_ENV, "SCHEDULER_METRICS_TOKEN": token}
    )
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expression", "expected"),
    [
        ("DATABASE_URL", "postgres://u:p@db.internal:5433/sched", "DATABASES['default']['HOST']", "db.internal"),
        ("TIME_ZONE", "Europe/Paris", "TIME_ZONE", "Europe/Paris"),
        ("SCHEDULER_LOCK_TTL", "120", "SCHEDULER_LOCK_TTL", "120"),
        ("CELERY_BROKER_URL", "redis://r:6379/0", "CELERY_BROKER_URL", "redis://r:6379/0"),
        ("ALLOWED_HOSTS", "a.example,b.example", "ALLOWED_HOSTS", "['a.example', 'b.example']"),
        ("SCHEDULER_START_TICK", "0", "SCHEDULER_START_TICK", "0.0"),
        ("SCHEDULER_CLAIM_AHEAD", "0.5", "SCHEDULER_CLAIM_AHEAD", "0.5"),
    ],
)
def test_settings_read_from_environment(variable, value, expression, expected):
    env = {"PATH": PRODUCTION_ENV["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings.local", variable: value}
    code = f"from django.conf import settings; print(settings.{expression})"
    result = _manage("shell", "-c", code, env=env)
    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SCHEDULER_START_TICK", "0.5", "SCHEDULER_START_TICK must be between 0 and 0.1 seconds"),
        ("SCHEDULER_START_TICK", "-0.01", "SCHEDULER_START_TICK must be between 0 and 0.1 seconds"),
        ("SCHEDULER_CLAIM_AHEAD", "1", "SCHEDULER_CLAIM_AHEAD must be at least 0 and under 1 second"),
    ],
)
def test_engine_timing_settings_out_of_range_are_refused(variable, value, message):
    env = {"PATH": PRODUCTION_ENV["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings.local", variable: value}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert message in result.stderr


def test_zero_setup_defaults():
    env = {"PATH": PRODUCTION_ENV["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    code = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, settings.SCHEDULER_LOCK_TTL)"
    )
    result = _manage("shell", "-c", code, env=env)
    assert result.stdout.strip().splitlines()[-1] == "django.db.backends.sqlite3 None 3600"


def test_compose_file_describes_the_production_deployment():
    with open(os.path.join(settings.BASE_DIR, "docker-compose.yml")) as handle:
        compose = yaml.safe_load(handle)
    services = compose["services"]
    assert {"postgres", "redis", "web", "scheduler", "worker"} <= set(services)
    assert services["scheduler"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"][:3] == ["celery", "-A", "config"]
    for name in ("postgres", "redis", "web", "scheduler", "worker"):
        assert "healthcheck" in services[name], name
