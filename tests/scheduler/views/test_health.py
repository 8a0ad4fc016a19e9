"""/healthz: 200 with JSON when the database answers, 503 when it does not, no login needed."""

from unittest import mock

from django.db import OperationalError


def test_healthy(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_database_down_gives_503(client, db):
    with mock.patch("scheduler.views.health.connection") as connection:
        connection.cursor.side_effect = OperationalError("connection refused by db.internal")
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "unavailable", "database": "unreachable", "error": "OperationalError"}
    assert "db.internal" not in response.content.decode()


def test_only_safe_methods(client, db):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
