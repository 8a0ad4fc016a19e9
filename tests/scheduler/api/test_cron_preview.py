"""GET /cron/preview: valid or not, the schedule in words, the next N fire times, as jobs evaluate them."""

from datetime import UTC, datetime

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


def times(body) -> list[datetime]:
    return [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in body["nextRunTimes"]]


def test_after_previews_a_fall_back_night_before_it_happens(client):
    # New York, 1 November 2026: a wildcard job runs in both copies of 01:xx.
    body = client.get(
        PREVIEW,
        {
            "expression": "*/15 * * * *",
            "timezone": "America/New_York",
            "after": "2026-11-01T00:50:00-04:00",
            "count": 9,
        },
    ).json()

    assert body["valid"] is True
    assert times(body) == [
        datetime(2026, 11, 1, 5, 0, tzinfo=UTC) + n * (times(body)[1] - times(body)[0]) for n in range(9)
    ]
    assert times(body)[4] == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 EST, the second 01:00


@pytest.mark.parametrize("after", ["2026-11-01T04:50:00Z", "2026-11-01T04:50:00+00:00", "2026-11-01T00:50:00-04:00"])
def test_after_accepts_an_offset_or_z(client, after):
    body = client.get(
        PREVIEW, {"expression": "30 1 * * *", "timezone": "America/New_York", "after": after, "count": 2}
    ).json()

    # A fixed job: 01:30 EDT only, then the next day.
    assert times(body) == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 2, 6, 30, tzinfo=UTC)]


def test_after_is_strict_and_may_be_in_the_past(client):
    body = client.get(
        PREVIEW, {"expression": "0 0 */2 * 1", "timezone": "UTC", "after": "2026-01-05T00:00:00Z", "count": 2}
    ).json()

    assert times(body) == [datetime(2026, 1, 19, tzinfo=UTC), datetime(2026, 2, 9, tzinfo=UTC)]
    assert body["description"] == "At 00:00, on every 2nd day of the month, if it is a Monday"


def test_empty_after_means_now(client):
    before = timezone.now()
    body = client.get(PREVIEW, {"expression": "* * * * *", "after": ""}).json()

    assert body["valid"] is True and times(body)[0] > before


@pytest.mark.parametrize(
    "after, fragment",
    [
        ("2026-11-01T01:30:00", "no UTC offset"),
        ("2026-11-01", "not an ISO 8601 date and time"),
        ("2026-11-01T01:30:00+25:00", "not an ISO 8601 date and time"),
        ("yesterday", "not an ISO 8601 date and time"),
        ("2026-02-30T00:00:00Z", "not an ISO 8601 date and time"),
        ("2026-11-01T25:00:00Z", "not an ISO 8601 date and time"),
        ("9999-12-31T23:59:59-14:00", "out of range"),
        ("0001-01-01T00:00:00+14:00", "out of range"),
        ("2026-11-01T01:30:00\x00Z", "not an ISO 8601 date and time"),
        ("2026-11-01T01:30:00 02:00", "in a URL, send '+' as %2B"),
        ("2026-11-01T01:30:00" + "0" * 500, "not an ISO 8601 date and time"),
        ("２０２６-11-01T01:30:00Z", "not an ISO 8601 date and time"),
    ],
)
def test_malformed_or_naive_after_is_a_400_naming_after(client, after, fragment):
    response = client.get(PREVIEW, {"expression": "0 2 * * *", "after": after})

    assert response.status_code == 400
    assert set(response.json()) == {"after"}
    assert fragment in response.json()["after"][0]
