"""Identification and attempts at unauthorized use (21 CFR 11.200(a)(1), 11.300(d)) over HTTP:
the username at the first signing of a session, the session's idle and absolute limits,
lockout of logins and signing passwords, unlocking, and the audit events and notices of each.
"""

import io
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_chain
from readiness.project.celery import app as celery_app
from signoff.signatures.models import SignOff
from signoff.teams import authentication
from tests.factories import PASSWORD, UserFactory, grant
from tests.signoff.notifications.test_notifications import _WebhookHandler
from tests.signoff.web.conftest import (
    HTMX,
    client_for,
    role_url,
    sign_data,
    sign_url,
    text,
)

pytestmark = pytest.mark.django_db

WRONG = "Tr0ub4dor&3"
LOCKED = "Too many failed attempts (5): logging in and signing are locked"


@pytest.fixture(autouse=True)
def _limits(settings):
    """The shipped defaults, pinned: 5 failures lock for 30 minutes."""
    settings.AXES_FAILURE_LIMIT = 5
    settings.SESSION_IDLE_TIMEOUT = 30 * 60
    settings.SESSION_ABSOLUTE_TIMEOUT = 12 * 3600
    settings.SIGNING_CONTINUOUS_SESSION_IDLE = 30 * 60


@pytest.fixture
def tasks_inline():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def administrators(db):
    """Who hears of a lockout: a superuser and a holder of "manage teams"; not a plain user,
    nor an inactive administrator."""
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    team_admin = UserFactory(username="tess")
    grant(team_admin, "signoff.manage_teams")
    UserFactory(username="gone", is_superuser=True, is_active=False)
    UserFactory(username="plain")
    return root, team_admin


def log_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def logged_in(client) -> bool:
    return SESSION_KEY in client.session


def events(action: str, **filters):
    return AuditEvent.objects.filter(action=action, **filters).order_by("id")


def age_session(client, **seconds_ago):
    """Move the session's clocks back, as if that much time had passed."""
    session = client.session
    now = time.time()
    for key, ago in seconds_ago.items():
        if key == "signing":
            identified = session[authentication.SIGNING_IDENTIFIED]
            session[authentication.SIGNING_IDENTIFIED] = {**identified, "at": now - ago}
        else:
            session[{"login": authentication.LOGIN_AT, "seen": authentication.SEEN_AT}[key]] = (
                now - ago
            )
    session.save()


# Failed logins: lockout, its audit events and notice.


def test_thirty_wrong_login_passwords_then_the_right_one_is_refused(
    member,
    administrators,
    tasks_inline,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(30):
            assert not logged_in(client) and log_in(client, "lee", WRONG).status_code in (200, 429)
        response = log_in(client, "lee", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in text(response)
    assert not logged_in(client)
    # Every attempt is on the installation's chain, the lockout once.
    failed = events("user.login_failed")
    assert failed.count() == 31
    assert failed.first().after["username"] == "lee" and failed.first().ip == "127.0.0.1"
    assert failed.last().after["locked_out"] is True
    (lockout,) = events("user.locked_out")
    assert lockout.after["username"] == "lee" and lockout.after["ip_address"] == "127.0.0.1"
    assert lockout.object_id == str(member.pk)
    assert not events("user.logged_in").exists()
    # The administrators are told once, by mail.
    (mail,) = mailoutbox
    assert sorted(mail.to) == ["root@example.com", "tess@example.com"]
    assert mail.subject == "[Readiness] Locked out after repeated failures: lee from 127.0.0.1"
    assert "manage.py axes_reset_username lee" in mail.body


def test_a_lockout_also_goes_to_the_webhook(
    member, administrators, tasks_inline, mailoutbox, django_capture_on_commit_callbacks, settings
):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebhookHandler)
    server.requests, server.answers = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/T0/B0/secret"
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(7):
                log_in(Client(), "lee", WRONG)
    finally:
        server.shutdown()
        server.server_close()
    (request,) = server.requests
    assert b"Locked out after repeated failures: lee from 127.0.0.1" in request["body"]
    assert len(mailoutbox) == 1


def test_an_unknown_name_is_locked_out_and_audited_too(administrators):
    for _ in range(5):
        log_in(Client(), "nobody", WRONG)
    failed = events("user.login_failed")
    assert failed.count() == 5
    assert {event.object_id for event in failed} == {"unknown"}
    assert failed.last().after["username"] == "nobody"
    (lockout,) = events("user.locked_out")
    assert lockout.after["username"] == "nobody"


def test_an_address_is_locked_out_across_account_names(member, outsider):
    """Per address too: guessing over many names from one address stops at the limit."""
    for name in ("a", "b", "c", "d", "e"):
        log_in(Client(), name, WRONG)
    response = log_in(Client(), "lee", PASSWORD)
    assert response.status_code == 429
    assert log_in(Client(REMOTE_ADDR="10.0.0.9"), "olga", PASSWORD).status_code == 302


def test_login_and_logout_are_audit_events(member):
    client = Client()
    assert log_in(client, "lee", PASSWORD).status_code == 302
    (login,) = events("user.logged_in")
    assert login.actor == member and login.ip == "127.0.0.1"
    client.post(reverse("logout"))
    (logout,) = events("user.logged_out")
    assert logout.actor == member and logout.after["reason"] == "logout"
    assert verify_chain(None).ok


# Unlocking: the administrators' way, audited.


def lock_out(username: str) -> None:
    for _ in range(5):
        log_in(Client(), username, WRONG)
    assert log_in(Client(), username, PASSWORD).status_code == 429


def test_axes_reset_username_unlocks_and_is_audited(member):
    lock_out("lee")
    out = io.StringIO()
    call_command("axes_reset_username", "lee", stdout=out)
    assert "attempts removed" in out.getvalue()
    (unlocked,) = events("user.unlocked")
    assert unlocked.actor is None
    assert unlocked.after["username"] == "lee" and unlocked.after["failures"] >= 5
    assert "axes_reset" in unlocked.after["by"]
    client = Client()
    assert log_in(client, "lee", PASSWORD).status_code == 302
    assert logged_in(client)


def test_deleting_the_attempts_in_the_admin_unlocks_naming_the_administrator(member):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    lock_out("lee")
    attempt = AccessAttempt.objects.get(username="lee")
    admin = client_for(root)
    changelist = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert changelist.status_code == 200 and "lee" in text(changelist)
    response = admin.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    (unlocked,) = events("user.unlocked")
    assert unlocked.actor == root and unlocked.after["by"] == "the admin"
    assert log_in(Client(), "lee", PASSWORD).status_code == 302


def test_attempts_dropped_after_the_cool_off_are_not_an_unlock(member, settings):
    for _ in range(5):
        log_in(Client(), "lee", WRONG)
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time.replace(year=2020)
    )
    assert log_in(Client(), "lee", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()
    assert not events("user.unlocked").exists()


# Signing: identification and lockout.


def test_first_signing_in_a_session_needs_the_username_later_ones_do_not(signers, security_ready):
    security = signers["security"]
    client = client_for(security)
    url = sign_url(security_ready, "security")
    assert 'name="username"' in text(client.get(role_url(security_ready, "security")))

    response = client.post(url, sign_data("reject", "not yet"), headers=HTMX)
    assert response.status_code == 400
    assert "Enter your username: the first signature of a session needs both." in text(response)

    response = client.post(url, {**sign_data("reject", "not yet"), "username": "lee"})
    assert response.status_code == 400
    assert "That is not your username. Nothing was signed." in text(response)
    (failed,) = events("signoff.signing_failed")
    assert failed.deployment_id == security_ready.pk and failed.actor == security
    assert failed.after["failure"] == "wrong_username"
    assert not SignOff.objects.exists()

    assert client.post(url, sign_data("reject", "not yet", user=security)).status_code == 302
    # Within the continuous session: the password alone.
    assert 'name="username"' not in text(client.get(role_url(security_ready, "security")))
    assert client.post(url, sign_data("reject", "still not")).status_code == 302
    assert SignOff.objects.count() == 2

    # After the idle limit without a signature, both components again.
    age_session(client, signing=30 * 60 + 1)
    assert 'name="username"' in text(client.get(role_url(security_ready, "security")))
    response = client.post(url, sign_data("reject", "third"))
    assert response.status_code == 400
    assert "Enter your username" in text(response)
    assert client.post(url, sign_data("reject", "third", user=security)).status_code == 302
    assert SignOff.objects.count() == 3


def test_a_new_login_asks_for_the_username_again(signers, security_ready):
    security = signers["security"]
    client = Client()
    log_in(client, security.username, PASSWORD)
    url = sign_url(security_ready, "security")
    assert client.post(url, sign_data("reject", "one", user=security)).status_code == 302
    client.post(reverse("logout"))
    log_in(client, security.username, PASSWORD)
    response = client.post(url, sign_data("reject", "two"))
    assert response.status_code == 400 and "Enter your username" in text(response)


def test_ten_wrong_signing_passwords_then_the_right_one_signs_nothing(
    signers,
    security_ready,
    administrators,
    tasks_inline,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    security = signers["security"]
    client = client_for(security)
    url = sign_url(security_ready, "security")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(10):
            response = client.post(url, sign_data(password=WRONG, user=security), headers=HTMX)
            assert response.status_code == 400
        response = client.post(url, sign_data(user=security), headers=HTMX)
    # The panel says so; not a lockout page in place of the fragment, not a crash.
    assert response.status_code == 400
    assert response.content.lstrip().startswith(b'<section id="panel"')
    assert LOCKED in text(response) and "Nothing was signed." in text(response)
    assert not SignOff.objects.exists()
    failures = [event.after["failure"] for event in events("signoff.signing_failed")]
    assert failures == ["wrong_password"] * 4 + ["locked_out"] * 7
    assert all(
        event.deployment_id == security_ready.pk for event in events("signoff.signing_failed")
    )
    # Signing failures are not counted twice as login failures; the lockout is one event.
    assert not events("user.login_failed").exists()
    assert events("user.locked_out").count() == 1
    assert len(mailoutbox) == 1
    # The account is locked for logging in too.
    assert log_in(Client(), security.username, PASSWORD).status_code == 429
    assert verify_chain(security_ready.pk).ok


def test_wrong_usernames_count_toward_the_signing_lockout(signers, security_ready):
    security = signers["security"]
    client = client_for(security)
    url = sign_url(security_ready, "security")
    for _ in range(5):
        client.post(url, {**sign_data(), "username": "someone-else"})
    response = client.post(url, sign_data(user=security))
    assert response.status_code == 400 and LOCKED in text(response)
    assert not SignOff.objects.exists()


# Sessions: the idle and absolute limits.


def test_the_idle_timeout_logs_out(member):
    client = client_for(member)
    assert client.get(reverse("dashboard")).status_code == 200
    age_session(client, seen=30 * 60 + 1)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not logged_in(client)
    (ended,) = events("user.logged_out")
    assert ended.actor == member and ended.after["reason"] == "idle"
    page = text(client.get(response["Location"]))
    assert "Your session ended after 30 minutes without activity." in page


def test_activity_within_the_idle_limit_keeps_the_session(member):
    client = client_for(member)
    age_session(client, seen=29 * 60)
    assert client.get(reverse("dashboard")).status_code == 200
    assert time.time() - client.session[authentication.SEEN_AT] < 5
    assert logged_in(client)


def test_the_absolute_limit_logs_out_however_active(member):
    client = client_for(member)
    age_session(client, login=12 * 3600 + 1, seen=10)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert not logged_in(client)
    (ended,) = events("user.logged_out")
    assert ended.after["reason"] == "absolute"


def test_an_expired_session_answers_htmx_with_hx_redirect(member, deployment):
    client = client_for(member)
    age_session(client, seen=30 * 60 + 1)
    page = f"http://testserver{reverse('deployment_detail', args=[deployment.pk])}"
    response = client.get(
        reverse("dashboard"), headers={"HX-Request": "true", "HX-Current-URL": page}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == (f"{reverse('login')}?next=/deployments/{deployment.pk}/")
    assert not logged_in(client)


def test_changing_ones_own_password_in_the_admin_is_an_audit_event():
    staff = UserFactory(username="stan", is_staff=True)
    client = client_for(staff)
    new = "a new long passphrase 42"
    url = reverse("admin:password_change")
    assert client.get(url).status_code == 200
    refused = client.post(url, {"old_password": WRONG, "new_password1": new, "new_password2": new})
    assert refused.status_code == 200 and not events("user.password_changed").exists()
    response = client.post(
        url, {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:password_change_done")
    (changed,) = events("user.password_changed")
    assert changed.actor == staff and changed.after == {"user": "stan", "by": "the user"}
    # The session goes on; the new password logs in.
    assert client.get(reverse("dashboard")).status_code == 200
    assert log_in(Client(), "stan", new).status_code == 302


def test_the_authentication_receivers_are_connected():
    from axes.models import AccessAttempt
    from axes.signals import user_locked_out
    from django.contrib.auth import signals
    from django.db.models.signals import post_delete

    def connected(signal) -> set[str]:
        return {lookup_key[0] for lookup_key, *_ in signal.receivers}

    assert "signoff.teams.logged_in" in connected(signals.user_logged_in)
    assert "signoff.teams.logged_out" in connected(signals.user_logged_out)
    assert "signoff.teams.login_failed" in connected(signals.user_login_failed)
    assert "signoff.teams.access_attempt_deleted" in connected(post_delete)
    assert post_delete.has_listeners(AccessAttempt)
    assert connected(user_locked_out) == {"signoff.notifications.user_locked_out"}
