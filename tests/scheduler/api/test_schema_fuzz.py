"""Schema-driven fuzzing: no generated request may get a 500 or a response the OpenAPI schema does not describe."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import positive_data_acceptance

from tests.factories import IntervalJobFactory

# Bounded so the suite stays fast; SCHEMA_FUZZ_EXAMPLES=500 SCHEMA_FUZZ_RANDOM=1 explores further.
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = not os.environ.get("SCHEMA_FUZZ_RANDOM")


@pytest.fixture(autouse=True)
def requests_share_the_test_transaction(db):
    """Keep Django from closing the connection after each request, as its test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def superuser_token(django_user_model):
    user = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.com", "pass")
    IntervalJobFactory(name="fuzz target", user=user)
    return Token.objects.create(user=user).key


# Loaded when the module is imported: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_every_request_as_its_schema_says(case, superuser_token):
    # Every built-in check runs (no 5xx, documented status codes, content types, headers and
    # bodies, negative data rejected) except positive_data_acceptance: a request can match the
    # schema and still be refused by the service layer (an unknown timezone, a bad cron
    # expression, a taken name), which is a correct 400.
    case.call_and_validate(
        headers={"Authorization": f"Token {superuser_token}"},
        excluded_checks=[positive_data_acceptance],
    )
