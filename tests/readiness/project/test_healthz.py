import pytest
from celery.contrib.testing.worker import start_worker

from readiness.project.celery import app as celery_app


@pytest.fixture
def celery_worker_running(transactional_db, django_db_serialized_rollback):
    """A real worker thread consuming the configured broker (Redis in CI).

    The worker needs committed rows, so the test is transactional; serialized rollback puts
    back the default template the flush removes, for the transactional tests after it.
    """
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def test_healthz_is_open_to_anonymous_users_and_reports_every_check(
    client, celery_worker_running, settings
):
    settings.HEALTHZ_WORKER_TIMEOUT = 10
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "worker"}
    assert body["checks"]["worker"]["detail"] == "pong"
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_reports_a_missing_worker_as_503(client, db, settings):
    settings.HEALTHZ_WORKER_TIMEOUT = 0.5
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert not body["checks"]["worker"]["ok"]
    assert "Timeout" in body["checks"]["worker"]["detail"]


def test_healthz_can_be_limited_to_database_and_broker(client, db):
    response = client.get("/healthz?check=database&check=broker")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "broker"}


def test_healthz_rejects_unknown_checks_with_400(client, db):
    response = client.get("/healthz?check=disk")
    assert response.status_code == 400
    assert "unknown check: disk" in response.json()["error"]


def test_healthz_reports_an_unreachable_broker(client, db, settings, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    settings.HEALTHZ_WORKER_TIMEOUT = 0.5
    response = client.get("/healthz?check=broker")
    assert response.status_code == 503
    assert not response.json()["checks"]["broker"]["ok"]
