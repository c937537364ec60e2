import email
import json
import socketserver
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, ItemStatus
from readiness.outbox.selectors import outbox_pending
from readiness.outbox.services import outbox_sweep
from readiness.project.celery import app as celery_app
from signoff.lifecycle import services
from signoff.notifications import services as notifications
from signoff.notifications.tasks import notification_email_send, notification_webhook_send
from signoff.signatures.models import SignOff
from signoff.teams.models import Role, RoleMembership
from tests.factories import PASSWORD, TeamFactory, UserFactory, make_deployment

SUBJECT_TAIL = "payments-api 2.4.0 → production"


# The outside world: a chat webhook and a mail server on 127.0.0.1 that fail on demand.


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(
            {"path": self.path, "content_type": self.headers["Content-Type"], "body": body}
        )
        answer = self.server.answers.pop(0) if self.server.answers else 200
        if answer == "drop":
            # Hang up without answering, as a crashing proxy would.
            self.close_connection = True
            return
        self.send_response(answer)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def webhook(settings):
    """A Slack-style incoming webhook; `answers` lists the statuses of the next requests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebhookHandler)
    server.daemon_threads = True
    server.requests, server.answers = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/secret"
    yield server
    server.shutdown()
    server.server_close()


class _SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        server = self.server
        server.connections += 1
        if server.busy_connections > 0:
            server.busy_connections -= 1
            self.reply("421 mail.test busy, try again later")
            return
        self.reply("220 mail.test ready")
        recipients = []
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO", b"MAIL", b"RSET", b"NOOP"):
                self.reply("250 OK")
            elif verb == b"RCPT":
                recipients.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == b"DATA":
                self.reply("354 go ahead")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                server.messages.append((recipients, email.message_from_bytes(data)))
                self.reply("250 queued")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_server(settings):
    """A mail server; the first `busy_connections` connections are turned away with 421."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.connections, server.busy_connections, server.messages = 0, 0, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.server_address[1]
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tasks_inline():
    """Enqueued tasks run at once in this process, their retries too (without the wait)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


# People and actions, through the services as the app does it.


def holder(deployment, slug: str, username: str, **fields):
    user = UserFactory(username=username, first_name=username.title(), last_name="Doe", **fields)
    deployment.team.members.add(user)
    RoleMembership.objects.create(team=deployment.team, user=user, role=Role.objects.get(slug=slug))
    return user


def complete_items(deployment, slug: str | None = None) -> None:
    items = ChecklistItem.objects.filter(section__deployment=deployment)
    if slug:
        items = items.filter(owner_role__slug=slug)
    items.update(status=ItemStatus.DONE)


def sign(deployment, user, slug: str, meaning: str = "approve", comment: str = "") -> SignOff:
    deployment.refresh_from_db()
    return services.signoff_record(
        deployment=deployment,
        role=Role.objects.get(slug=slug),
        user=user,
        meaning=meaning,
        comment=comment,
        password=PASSWORD,
        username=user.get_username(),
    )


def committed(django_capture_on_commit_callbacks, action):
    """Run `action` and then what it left for after commit, as a real commit would."""
    with django_capture_on_commit_callbacks(execute=True):
        return action()


@pytest.fixture
def in_review(deployment, member):
    services.signoff_request(deployment=deployment, user=member)
    deployment.refresh_from_db()
    return deployment


def only_mail(mailoutbox):
    assert len(mailoutbox) == 1, [message.subject for message in mailoutbox]
    return mailoutbox[0]


# Enqueued after commit, never on rollback.


@pytest.mark.django_db
def test_notifications_are_enqueued_only_after_the_signoff_commits(
    in_review, tasks_inline, mailoutbox, django_capture_on_commit_callbacks
):
    sam = holder(in_review, "security", "sam")
    with django_capture_on_commit_callbacks() as callbacks:
        sign(in_review, sam, "security", "reject", "No WAF in front of the API")
        assert mailoutbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert only_mail(mailoutbox).subject == (
        f"[Readiness] Security sign-off rejected: {SUBJECT_TAIL}"
    )


@pytest.mark.django_db
def test_nothing_is_enqueued_when_the_transaction_rolls_back(
    in_review, tasks_inline, mailoutbox, webhook, django_capture_on_commit_callbacks
):
    sam = holder(in_review, "security", "sam")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        sign(in_review, sam, "security", "reject", "No WAF")
        raise RuntimeError("the request failed after signing")
    assert callbacks == []
    assert mailoutbox == [] and webhook.requests == []
    assert not SignOff.objects.exists()


@pytest.mark.django_db
def test_announce_takes_only_the_known_kinds_and_arguments(deployment):
    with pytest.raises(ValueError, match="Unknown notification kind"):
        notifications.announce("deleted", deployment_id=deployment.pk)
    with pytest.raises(ValueError, match="needs the signoff_id"):
        notifications.announce("stale", deployment_id=deployment.pk, changes=["MFA"])
    with pytest.raises(TypeError):
        notifications.announce("signed", deployment_id=deployment.pk, signoff_id=1, role_id=2)


# Who is told what, per kind.


@pytest.mark.django_db
def test_a_signoff_request_mails_every_role_holder_of_the_team_once(
    deployment, member, tasks_inline, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://readiness.example.org"
    tina = holder(deployment, "tech-lead", "tina")
    sam = holder(deployment, "security", "sam")
    RoleMembership.objects.create(
        team=deployment.team, user=sam, role=Role.objects.get(slug="devops")
    )
    holder(deployment, "product", "nomail", email="")
    gone = holder(deployment, "devops", "gone")
    deployment.team.members.remove(gone)
    olga = UserFactory(username="olga")
    elsewhere = make_deployment(user=olga, team=TeamFactory(slug="search", members=[olga]))
    holder(elsewhere, "security", "other-team")

    committed(
        django_capture_on_commit_callbacks,
        lambda: services.signoff_request(deployment=deployment, user=tina),
    )

    mail = only_mail(mailoutbox)
    assert mail.subject == f"[Readiness] Sign-off requested: {SUBJECT_TAIL}"
    # The requester holds a role too and is asked like everyone else; the owner holds none.
    assert mail.to == [sam.email, tina.email]
    assert member.email not in mail.to
    base = f"https://readiness.example.org/deployments/{deployment.pk}/"
    assert "Tina Doe requested sign-off for payments-api 2.4.0 → production" in mail.body
    assert f"- Security: {base}roles/security/" in mail.body
    assert f"- Product: {base}roles/product/" in mail.body
    assert f"Deployment: {base}" in mail.body
    assert mail.extra_headers["Auto-Submitted"] == "auto-generated"


@pytest.mark.django_db
def test_a_rejection_mails_the_owner_and_the_role_but_not_the_signer(
    in_review, member, tasks_inline, mailoutbox, django_capture_on_commit_callbacks
):
    sam = holder(in_review, "security", "sam")
    sue = holder(in_review, "security", "sue")
    holder(in_review, "devops", "dev")

    signoff = committed(
        django_capture_on_commit_callbacks,
        lambda: sign(in_review, sam, "security", "reject", "No WAF in front of the API"),
    )

    mail = only_mail(mailoutbox)
    assert mail.subject == f"[Readiness] Security sign-off rejected: {SUBJECT_TAIL}"
    assert sorted(mail.to) == sorted([member.email, sue.email])
    signed_at = signoff.signed_at.strftime("%Y-%m-%d %H:%M")
    assert "Sam Doe signed for Security on payments-api 2.4.0 → production" in mail.body
    assert "Meaning: rejected" in mail.body
    assert f"Signed at: {signed_at} UTC" in mail.body
    assert "Reason: No WAF in front of the API" in mail.body
    assert f"http://localhost:8000/deployments/{in_review.pk}/roles/security/" in mail.body


@pytest.mark.django_db
def test_conditions_of_an_approval_are_in_the_mail(
    in_review, tasks_inline, mailoutbox, django_capture_on_commit_callbacks
):
    dana = holder(in_review, "devops", "dana")
    complete_items(in_review, "devops")

    committed(
        django_capture_on_commit_callbacks,
        lambda: sign(in_review, dana, "devops", "approve_with_conditions", "Scale to 4 first"),
    )

    mail = only_mail(mailoutbox)
    assert mail.subject == (f"[Readiness] DevOps sign-off approved with conditions: {SUBJECT_TAIL}")
    assert "Conditions: Scale to 4 first" in mail.body


@pytest.mark.django_db
def test_a_revocation_tells_the_signer_and_the_owner_but_not_the_revoker(
    in_review, member, tasks_inline, mailoutbox, django_capture_on_commit_callbacks
):
    sam = holder(in_review, "security", "sam")
    sue = holder(in_review, "security", "sue")
    signoff = sign(in_review, sam, "security", "reject", "No WAF")

    committed(
        django_capture_on_commit_callbacks,
        lambda: services.signoff_revoke(signoff=signoff, user=sue, reason="WAF is in place now"),
    )

    mail = only_mail(mailoutbox)
    assert mail.subject == f"[Readiness] Security sign-off revoked: {SUBJECT_TAIL}"
    assert sorted(mail.to) == sorted([member.email, sam.email])
    assert "Sue Doe revoked the Security sign-off of Sam Doe" in mail.body
    assert "Reason for revoking: WAF is in place now" in mail.body
    assert "Reason: No WAF" in mail.body


@pytest.mark.django_db
def test_a_stale_signoff_mail_lists_what_changed(
    in_review, member, tasks_inline, mailoutbox, django_capture_on_commit_callbacks
):
    sam = holder(in_review, "security", "sam")
    complete_items(in_review, "security")
    sign(in_review, sam, "security")
    mfa = ChecklistItem.objects.get(section__deployment=in_review, title="MFA")
    # Only Security's holders change MFA: Lee holds it too, and did not sign.
    RoleMembership.objects.create(
        team=in_review.team, user=member, role=Role.objects.get(slug="security")
    )

    committed(
        django_capture_on_commit_callbacks,
        lambda: readiness_services.item_update(
            item=mfa,
            user=member,
            expected_version=mfa.version,
            status=ItemStatus.FAILED,
            note="root has no MFA",
            evidence_url="",
            na_reason="",
            reason="MFA found off on root",
        ),
    )

    mail = only_mail(mailoutbox)
    assert mail.subject == f"[Readiness] Security sign-off stale: {SUBJECT_TAIL}"
    # The editor is told too: a stale sign-off is news even to whoever caused it.
    assert sorted(mail.to) == sorted([member.email, sam.email])
    assert "What changed:\n- MFA: done → failed — " in mail.body
    assert "“MFA found off on root”" in mail.body
    assert "Security has to review and sign again." in mail.body


@pytest.mark.django_db
def test_approval_of_the_deployment_tells_the_owner_and_every_role_holder(
    in_review, member, tasks_inline, mailoutbox, django_capture_on_commit_callbacks
):
    holders = {
        slug: holder(in_review, slug, name)
        for slug, name in [
            ("tech-lead", "tina"),
            ("security", "sam"),
            ("devops", "dana"),
            ("product", "pat"),
        ]
    }
    complete_items(in_review)
    for slug in ("tech-lead", "security", "devops"):
        sign(in_review, holders[slug], slug)

    committed(
        django_capture_on_commit_callbacks,
        lambda: sign(
            in_review, holders["product"], "product", "approve_with_conditions", "Tell support"
        ),
    )

    subjects = [message.subject for message in mailoutbox]
    assert subjects == [
        f"[Readiness] Product sign-off approved with conditions: {SUBJECT_TAIL}",
        f"[Readiness] Deployment approved: {SUBJECT_TAIL}",
    ]
    approved = mailoutbox[1]
    assert sorted(approved.to) == sorted([member.email, *(u.email for u in holders.values())])
    assert "- Security: Sam Doe, approved, " in approved.body
    assert "- Product: Pat Doe, approved with conditions, " in approved.body
    assert "  Conditions: Tell support" in approved.body
    assert "back in review" not in approved.body


@pytest.mark.django_db
def test_an_approval_mail_sent_late_says_the_deployment_went_back_to_review(in_review, mailoutbox):
    sam, pat = holder(in_review, "security", "sam"), holder(in_review, "product", "pat")
    complete_items(in_review)
    for slug in ("tech-lead", "devops"):
        sign(in_review, holder(in_review, slug, f"{slug}-holder"), slug)
    security = sign(in_review, sam, "security")
    sign(in_review, pat, "product")
    services.signoff_revoke(signoff=security, user=sam, reason="Pen test found an issue")

    notification_email_send.apply(kwargs={"kind": "approved", "deployment_id": in_review.pk})

    body = only_mail(mailoutbox).body
    assert "- Product: Pat Doe, approved, " in body
    assert "- Security:" not in body
    assert "back in review" in body


@pytest.mark.django_db
def test_running_the_mail_task_twice_sends_the_same_message_id(deployment, mailoutbox, settings):
    settings.SITE_URL = "https://readiness.example.org"
    holder(deployment, "security", "sam")
    kwargs = {"kind": "requested", "deployment_id": deployment.pk}
    notification_email_send.apply(kwargs=kwargs, task_id="abc-123")
    notification_email_send.apply(kwargs=kwargs, task_id="abc-123")
    ids = {message.extra_headers["Message-ID"] for message in mailoutbox}
    assert ids == {"<notification.abc-123@readiness.example.org>"}


@pytest.mark.django_db
def test_an_event_about_a_missing_deployment_sends_nothing(mailoutbox, webhook):
    assert notification_email_send.apply(kwargs={"kind": "approved", "deployment_id": 0}).get() == 0
    assert (
        notification_webhook_send.apply(kwargs={"kind": "approved", "deployment_id": 0}).get()
        is None
    )
    assert mailoutbox == [] and webhook.requests == []


# The webhook.


@pytest.mark.django_db
def test_the_webhook_is_retried_after_a_server_error_and_gets_slack_json(
    in_review, webhook, mailoutbox
):
    sam = holder(in_review, "security", "sam")
    signoff = sign(in_review, sam, "security", "reject", "No <WAF> & no rate limit")
    webhook.answers = [500]

    result = notification_webhook_send.apply(
        kwargs={
            "kind": "signed",
            "deployment_id": in_review.pk,
            "signoff_id": signoff.pk,
            "actor_id": sam.pk,
        }
    )

    assert result.get() == 200
    assert len(webhook.requests) == 2
    assert webhook.requests[0] == webhook.requests[1]
    request = webhook.requests[1]
    assert request["path"] == "/hooks/T000/B000/secret"
    assert request["content_type"] == "application/json"
    payload = json.loads(request["body"])
    assert list(payload) == ["text"]
    text = payload["text"]
    assert text.startswith(f"*Security sign-off rejected: {SUBJECT_TAIL}*\n")
    assert "Reason: No &lt;WAF&gt; &amp; no rate limit" in text
    assert f"http://localhost:8000/deployments/{in_review.pk}/roles/security/" in text
    assert mailoutbox == []


@pytest.mark.django_db
@pytest.mark.parametrize("trouble", [429, 503, "drop"])
def test_the_webhook_is_retried_when_throttled_or_unreachable(deployment, webhook, trouble):
    webhook.answers = [trouble, trouble]
    kwargs = {"kind": "requested", "deployment_id": deployment.pk}
    assert notification_webhook_send.apply(kwargs=kwargs).get() == 200
    assert len(webhook.requests) == 3


@pytest.mark.django_db
def test_a_refused_webhook_payload_is_logged_and_not_retried(deployment, webhook, caplog):
    webhook.answers = [404]
    kwargs = {"kind": "requested", "deployment_id": deployment.pk}
    assert notification_webhook_send.apply(kwargs=kwargs).get() == 404
    assert len(webhook.requests) == 1
    assert "The webhook refused the requested notification" in caplog.text
    assert "secret" not in caplog.text


@pytest.mark.django_db
def test_the_webhook_gives_up_after_its_retries(deployment, webhook):
    webhook.answers = [500] * 20
    kwargs = {"kind": "requested", "deployment_id": deployment.pk}
    result = notification_webhook_send.apply(kwargs=kwargs)
    assert result.failed()
    assert len(webhook.requests) == 1 + notification_webhook_send.max_retries


# A failing broker or mail server never costs a sign-off.


@pytest.mark.django_db
def test_a_broker_that_is_down_delays_the_notifications_without_losing_them(
    in_review, webhook, mailoutbox, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    sam = holder(in_review, "security", "sam")
    with monkeypatch.context() as down:
        # Nothing listens on port 1: every enqueue meets a broker that is down. Celery keeps
        # the connections it already made (as after a fork, it makes new ones to this address).
        down.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
        down.setattr(celery_app, "_pool", None)
        down.setattr(celery_app.amqp, "_producer_pool", None)
        signoff = committed(
            django_capture_on_commit_callbacks,
            lambda: sign(in_review, sam, "security", "reject", "No WAF"),
        )

    assert SignOff.objects.filter(pk=signoff.pk).exists()
    pending = list(outbox_pending().filter(key__startswith="notify:signed:"))
    assert [message.key.rsplit(":", 1)[1] for message in pending] == ["email", "webhook"]
    # One refusal, then the request stops trying: the webhook row is left to the sweeper.
    assert [message.attempts for message in pending] == [1, 0]
    assert "OperationalError" in pending[0].last_error
    assert "it stays pending for the sweeper" in caplog.text
    assert webhook.requests == [] and mailoutbox == []

    # The broker is back (tasks run inline here): the sweeper sends each row once.
    celery_app.conf.task_always_eager = True
    try:
        assert outbox_sweep(min_age=timedelta(0)) >= 2
        assert outbox_sweep(min_age=timedelta(0)) == 0
    finally:
        celery_app.conf.task_always_eager = False
    assert [m.to for m in mailoutbox if "rejected" in m.subject] == [[in_review.owner.email]]
    assert [b"rejected" in request["body"] for request in webhook.requests] == [True]


@pytest.mark.django_db
def test_a_busy_mail_server_is_retried_and_the_signoff_stands(
    in_review, member, tasks_inline, smtp_server, django_capture_on_commit_callbacks
):
    smtp_server.busy_connections = 1
    sam = holder(in_review, "security", "sam")

    signoff = committed(
        django_capture_on_commit_callbacks,
        lambda: sign(in_review, sam, "security", "reject", "No WAF"),
    )

    assert SignOff.objects.filter(pk=signoff.pk).exists()
    assert smtp_server.connections == 2
    [(recipients, message)] = smtp_server.messages
    assert recipients == [member.email]
    assert str(make_header(decode_header(message["Subject"]))) == (
        f"[Readiness] Security sign-off rejected: {SUBJECT_TAIL}"
    )


@pytest.mark.django_db
def test_a_mail_server_that_stays_down_fails_the_task_not_the_signoff(
    in_review, tasks_inline, smtp_server, django_capture_on_commit_callbacks
):
    smtp_server.busy_connections = 100
    sam = holder(in_review, "security", "sam")

    signoff = committed(
        django_capture_on_commit_callbacks,
        lambda: sign(in_review, sam, "security", "reject", "No WAF"),
    )

    assert SignOff.objects.filter(pk=signoff.pk).exists()
    assert smtp_server.connections == 1 + notification_email_send.max_retries
    assert smtp_server.messages == []


# A real worker, from the configured broker (Redis in CI).


def test_the_tasks_register_with_the_worker_through_autodiscovery():
    code = (
        "from readiness.project.celery import app; app.loader.import_default_modules(); "
        "print(sorted(name for name in app.tasks if name.startswith('signoff.')))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "'signoff.notification_email_send'" in listed.stdout
    assert "'signoff.notification_webhook_send'" in listed.stdout


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_delivers_mail_and_webhook_after_a_signoff(mailoutbox, webhook):
    owner = UserFactory(username="owen")
    deployment = make_deployment(user=owner, team=TeamFactory(slug="payments", members=[owner]))
    sam = holder(deployment, "security", "sam")
    services.signoff_request(deployment=deployment, user=owner)
    celery_app.control.purge()  # leftovers of earlier runs would refer to other rows
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        sign(deployment, sam, "security", "reject", "No WAF")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            any("rejected" in m.subject for m in mailoutbox)
            and any(b"rejected" in r["body"] for r in webhook.requests)
        ):
            time.sleep(0.05)
    rejected = [m for m in mailoutbox if "rejected" in m.subject]
    assert [m.to for m in rejected] == [[owner.email]]
    assert [json.loads(r["body"])["text"].splitlines()[0] for r in webhook.requests][-1] == (
        f"*Security sign-off rejected: {SUBJECT_TAIL}*"
    )
