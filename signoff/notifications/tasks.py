"""Celery entry points for sign-off notifications: thin wrappers that compose from ids and send.

A notification is composed when the task runs, from the ids of the event, so a retry sends
what the database says then; the sign-off rows it describes are never edited. Each comes
from an outbox row (`outbox_key`) and is sent once per row, however often the broker
delivers it (`outbox_once`).
"""

import json
import logging
import smtplib
from urllib.parse import urlsplit

import urllib3
from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError

from readiness.outbox.services import OutboxBusy, outbox_once
from signoff.notifications.services import Notification, notification_compose, security_compose

logger = logging.getLogger(__name__)

# Seconds per SMTP operation: without one, a mail server that accepts the connection and
# then says nothing holds the worker until the hard time limit kills it.
SMTP_TIMEOUT = 20
WEBHOOK_TIMEOUT = urllib3.Timeout(connect=5, read=10)
# urllib3's own retries are off: Celery retries with backoff instead of holding the worker.
_http = urllib3.PoolManager(retries=False, timeout=WEBHOOK_TIMEOUT)


class WebhookUnavailable(Exception):
    """The webhook could not be reached or answered 429 / 5xx: worth another try later."""


# SMTPException is an OSError: refused connections, timeouts, dropped sessions and 4xx
# replies all land here. Mail servers recover in minutes, hence the long backoff.
# OutboxBusy: another delivery of the same row is sending it right now.
MAIL_TASK = dict(
    autoretry_for=(smtplib.SMTPException, OSError, DatabaseError, OutboxBusy),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    time_limit=120,
    soft_time_limit=100,
)
WEBHOOK_TASK = dict(
    autoretry_for=(WebhookUnavailable, DatabaseError, OutboxBusy),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
    time_limit=60,
    soft_time_limit=45,
)


def _message_ref(outbox_key: str | None, task_id: str) -> str:
    """The outbox key (else the task id) survives retries, redelivery and a second publish:
    a second send after a crash carries the same Message-ID, which mail servers and
    clients use to drop the duplicate."""
    return outbox_key.replace(":", ".") if outbox_key else task_id


@shared_task(bind=True, name="signoff.notification_email_send", **MAIL_TASK)
def notification_email_send(
    self,
    kind: str,
    deployment_id: int,
    signoff_id: int | None = None,
    actor_id: int | None = None,
    changes: list[str] | None = None,
    outbox_key: str | None = None,
) -> int:
    def send() -> int:
        return _email_send(
            kind,
            deployment_id=deployment_id,
            signoff_id=signoff_id,
            actor_id=actor_id,
            changes=changes,
            message_ref=_message_ref(outbox_key, self.request.id),
        )

    return outbox_once(outbox_key, send) or 0


def _email_send(kind: str, *, message_ref: str | None, **event) -> int:
    return _mail(notification_compose(kind, **event), message_ref=message_ref)


def _mail(notification: Notification | None, *, message_ref: str | None) -> int:
    if notification is None or not notification.recipients:
        return 0
    headers = {"Auto-Submitted": "auto-generated"}
    if message_ref:
        domain = urlsplit(settings.SITE_URL).hostname or "readiness"
        headers["Message-ID"] = f"<notification.{message_ref}@{domain}>"
    message = EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(notification.recipients),
        headers=headers,
        connection=get_connection(timeout=SMTP_TIMEOUT),
    )
    return message.send()


@shared_task(name="signoff.notification_webhook_send", **WEBHOOK_TASK)
def notification_webhook_send(
    kind: str,
    deployment_id: int,
    signoff_id: int | None = None,
    actor_id: int | None = None,
    changes: list[str] | None = None,
    outbox_key: str | None = None,
) -> int | None:
    """POST the message as Slack-compatible JSON; returns the HTTP status, None if not sent
    (no webhook, nothing to say, or this outbox row was posted already)."""
    if not settings.NOTIFY_WEBHOOK_URL:
        return None
    return outbox_once(
        outbox_key,
        lambda: _webhook_send(
            kind,
            deployment_id=deployment_id,
            signoff_id=signoff_id,
            actor_id=actor_id,
            changes=changes,
        ),
    )


def _webhook_send(kind: str, *, deployment_id: int, **event) -> int | None:
    notification = notification_compose(kind, deployment_id=deployment_id, **event)
    return _post(notification, about=f"{kind} notification of deployment {deployment_id}")


def _post(notification: Notification | None, *, about: str) -> int | None:
    url = settings.NOTIFY_WEBHOOK_URL
    if notification is None:
        return None
    try:
        response = _http.request(
            "POST",
            url,
            body=json.dumps({"text": notification.webhook_text}).encode(),
            headers={"Content-Type": "application/json"},
        )
    except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as error:
        # Connection refused, DNS failure, timeout, connection dropped mid-answer.
        raise WebhookUnavailable(f"webhook unreachable: {type(error).__name__}") from error
    if response.status == 429 or response.status >= 500:
        raise WebhookUnavailable(f"webhook answered HTTP {response.status}")
    if response.status >= 300:
        # A refused payload or a revoked URL will not get better by resending. The URL is
        # a credential (Slack puts the token in the path), so it stays out of the log.
        logger.warning(
            "The webhook refused the %s: HTTP %s %s",
            about,
            response.status,
            response.data[:200].decode(errors="replace"),
        )
    return response.status


# Security notifications (a lockout) to the administrators, composed from the audit event.


@shared_task(bind=True, name="signoff.security_email_send", **MAIL_TASK)
def security_email_send(self, event_id: int, outbox_key: str | None = None) -> int:
    message_ref = _message_ref(outbox_key, self.request.id)
    return (
        outbox_once(outbox_key, lambda: _mail(security_compose(event_id), message_ref=message_ref))
        or 0
    )


@shared_task(name="signoff.security_webhook_send", **WEBHOOK_TASK)
def security_webhook_send(event_id: int, outbox_key: str | None = None) -> int | None:
    if not settings.NOTIFY_WEBHOOK_URL:
        return None
    return outbox_once(
        outbox_key,
        lambda: _post(security_compose(event_id), about=f"security notice (audit #{event_id})"),
    )
