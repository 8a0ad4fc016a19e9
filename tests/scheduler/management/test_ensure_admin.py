"""Tests of `manage.py ensure_admin`: the first superuser, created once, from the environment or generated."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture(autouse=True)
def no_superuser_environment(monkeypatch):
    for name in ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"^\s*password: (\S+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_creates_admin_with_a_generated_password_it_prints():
    output = ensure_admin()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.is_active
    assert "Created superuser 'admin'" in output
    assert re.search(r"^\s*username: admin$", output, re.MULTILINE)
    password = printed_password(output)
    assert len(password) >= 12
    assert admin.check_password(password)


def test_generated_passwords_are_not_predictable():
    first = printed_password(ensure_admin())
    User.objects.filter(is_superuser=True).delete()
    second = printed_password(ensure_admin())
    assert first != second


def test_second_run_changes_nothing():
    password = printed_password(ensure_admin())
    output = ensure_admin()
    assert output.strip() == "A superuser already exists; not creating another."
    assert "password" not in output
    assert User.objects.filter(is_superuser=True).count() == 1
    assert User.objects.get(username="admin").check_password(password)


def test_takes_name_password_and_email_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-from-env")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    output = ensure_admin()
    root = User.objects.get(username="root")
    assert root.is_superuser and root.email == "root@example.com"
    assert root.check_password("s3cret-from-env")
    assert "Created superuser 'root'" in output
    assert "s3cret-from-env" not in output  # a password the operator chose is never echoed
    assert not User.objects.filter(username="admin").exists()


def test_name_from_the_environment_with_a_generated_password(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    output = ensure_admin()
    assert User.objects.get(username="ops").check_password(printed_password(output))


def test_empty_environment_values_fall_back_to_the_defaults(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "")
    output = ensure_admin()
    assert User.objects.get(username="admin").check_password(printed_password(output))


def test_does_nothing_when_any_superuser_exists(monkeypatch):
    User.objects.create_superuser(username="someone", email="", password="pw")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "other")
    assert "already exists" in ensure_admin()
    assert list(User.objects.values_list("username", flat=True)) == ["someone"]


def test_ordinary_users_do_not_count_as_an_admin():
    UserFactory(username="bob")
    ensure_admin()
    assert User.objects.get(username="admin").is_superuser
    assert not User.objects.get(username="bob").is_superuser


def test_ordinary_user_with_the_admin_name_is_a_clear_error(db):
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    get_user_model().objects.create_user(username="admin", password="x")
    with pytest.raises(CommandError, match="exists but is not a superuser"):
        call_command("ensure_admin")
