"""GET /cron/preview: valid or not, the schedule in words, the next N fire times, as jobs evaluate them."""
from datetime import datetime

import pytest
from django.utils import timezone

from scheduler.services.cron import cron_next_fire_times
from tests.scheduler.api.conftest import API, client_for, user_with

pytestmark = pytest.mark.django_db

PREVIEW = f"{API}/cron/preview"


def test_valid_expression_in_a_timezone(client):
    response = client.get(PREVIEW, {"expression": "0 2 * * *", "timezone": "Europe/Paris", "count": 3})

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True and body["errors"] == {}
    assert body["expression"] == "0 2 * * *" and body["timezone"] == "Europe/Paris"
    assert body["description"] == "At 02:00"
    assert len(body["nextRunTimes"]) == 3
    for text in body["nextRunTimes"]:
        fire_time = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert fire_time > timezone.now()
        assert fire_time.astimezone(timezone.get_fixed_timezone(0)).minute == 0


def test_times_are_the_ones_the_engine_computes(client):
    expression, zone = "*/7 9-17 * * 1-5", "America/New_York"
    before = timezone.now()
    body = client.get(PREVIEW, {"expression": expression, "timezone": zone}).json()
    after = timezone.now()

    got = [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in body["nextRunTimes"]]
    # Computed at some instant between `before` and `after`; either bound gives the same times
    # unless a fire time fell in between.
    assert got in (cron_next_fire_times(expression, zone, before, 5), cron_next_fire_times(expression, zone, after, 5))


def test_defaults_count_5_and_the_servers_timezone(client, settings):
    body = client.get(PREVIEW, {"expression": "@daily"}).json()

    assert body["valid"] is True
    assert body["timezone"] == settings.TIME_ZONE
    assert body["expression"] == "@daily" and body["description"] == "At 00:00"
    assert len(body["nextRunTimes"]) == 5


@pytest.mark.parametrize(
    "expression, fragment",
    [("61 * * * *", "out of range"), ("0 2 * *", "has 5 fields"), ("0 0 30 2 *", "never matches")],
)
def test_invalid_expression_is_valid_false_with_the_reason(client, expression, fragment):
    response = client.get(PREVIEW, {"expression": expression})

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False and body["nextRunTimes"] == [] and body["description"] == ""
    assert fragment in body["errors"]["expression"][0]


def test_unknown_timezone_is_valid_false_naming_timezone(client):
    body = client.get(PREVIEW, {"expression": "0 2 * * *", "timezone": "Atlantis/Capital"}).json()

    assert body["valid"] is False
    assert "Unknown timezone" in body["errors"]["timezone"][0]


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "expression"),
        ({"expression": ""}, "expression"),
        ({"expression": "x" * 201}, "expression"),
        ({"expression": "0 2 * * *", "count": "0"}, "count"),
        ({"expression": "0 2 * * *", "count": "101"}, "count"),
        ({"expression": "0 2 * * *", "count": "many"}, "count"),
        ({"expression": "0 2 * * *", "timezone": "x" * 65}, "timezone"),
        ({"expression": "0\x00 2 * * *"}, "expression"),
    ],
)
def test_malformed_query_is_a_400_naming_the_parameter(client, params, field):
    response = client.get(PREVIEW, params)

    assert response.status_code == 400
    assert field in response.json()


def test_any_authenticated_user_may_preview(anonymous_client, db):
    assert client_for(user_with()).get(PREVIEW, {"expression": "0 2 * * *"}).status_code == 200
    assert anonymous_client.get(PREVIEW, {"expression": "0 2 * * *"}).status_code == 401
