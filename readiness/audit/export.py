"""The audit page of one deployment: its filters, the events they select, and the exports.

The JSON export carries every field that goes into an event's hash, named as in
`readiness.audit.services`, so an auditor can recompute each hash and follow `prev_hash` without
access to the application.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

if TYPE_CHECKING:  # the checklist layer sits above the audit trail
    from readiness.checklists.models import Deployment

from readiness.audit.models import AuditEvent
from readiness.audit.services import hashed_fields
from readiness.people import display_name

PAGE_SIZE = 50
SYSTEM = "system"
FORMATS = ("csv", "json")
# Spreadsheets run a cell that starts with one of these as a formula (OWASP CSV injection);
# tab and carriage return are on OWASP's list too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SUMMARY_VALUE_LENGTH = 120


class AuditFilterForm(forms.Form):
    """GET filters of the audit page; `format` picks an export instead of the page."""

    action = forms.ChoiceField(required=False, label="Action")
    actor = forms.ChoiceField(required=False, label="Actor")
    date_from = forms.DateField(
        required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )
    format = forms.ChoiceField(
        required=False,
        label="Format",
        choices=[("", "page"), *((name, name) for name in FORMATS)],
        error_messages={"invalid_choice": "Unknown export format “%(value)s”: use csv or json."},
    )

    def __init__(self, data=None, *, deployment: Deployment):
        super().__init__(data)
        actions, actors, has_system = _present(deployment)
        self.fields["action"].choices = [("", "Any action"), *((a, a) for a in actions)]
        self.fields["actor"].choices = [
            ("", "Anyone"),
            *((str(user.pk), display_name(user)) for user in actors),
            *([(SYSTEM, "System")] if has_system else []),
        ]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "“To” is before “From”.")
        return cleaned

    @property
    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "action": data["action"],
            "actor": data["actor"],
            "date_from": data["date_from"],
            "date_to": data["date_to"],
        }


def _present(deployment: Deployment) -> tuple[list[str], list, bool]:
    """The actions and actors that occur in the deployment's trail (the filter choices)."""
    pairs = set(
        AuditEvent.objects.filter(deployment=deployment)
        # Without order_by() the model's ordering adds "id" and every row is distinct.
        .order_by()
        .values_list("action", "actor_id")
        .distinct()
    )
    actor_ids = {actor_id for _, actor_id in pairs if actor_id is not None}
    users = get_user_model().objects.filter(pk__in=actor_ids) if actor_ids else []
    actors = sorted(users, key=lambda user: display_name(user).lower())
    has_system = any(actor_id is None for _, actor_id in pairs)
    return sorted({action for action, _ in pairs}), actors, has_system


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def deployment_events(
    deployment: Deployment,
    *,
    action: str = "",
    actor: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    """The deployment's events matching the filters, newest first, with their actors."""
    events = AuditEvent.objects.filter(deployment=deployment).select_related("actor")
    if action:
        events = events.filter(action=action)
    if actor == SYSTEM:
        events = events.filter(actor__isnull=True)
    elif actor:
        events = events.filter(actor_id=int(actor))
    if date_from:
        events = events.filter(created_at__gte=_day_start(date_from))
    if date_to and date_to < date.max:
        # The whole "to" day counts, up to its last microsecond; the last day a date can
        # name (9999-12-31) has no next day and so bounds nothing.
        events = events.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    return events.order_by("-id")


def _short(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        text = "; ".join(_short(part) for part in value) if value else "—"
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text


def _clip(text: str, limit: int | None) -> str:
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _as_dict(value) -> dict:
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def summarize(before, after, *, limit: int | None = SUMMARY_VALUE_LENGTH) -> list[str]:
    """Readable lines of what an event changed: "status: open → done" for each changed key;
    every key when the event only has one side (something created, or removed)."""
    before = _as_dict(before)
    after = _as_dict(after)
    lines = []
    if before and after:
        for key in [*before, *(k for k in after if k not in before)]:
            old, new = before.get(key), after.get(key)
            if old != new:
                lines.append(f"{key}: {_clip(_short(old), limit)} → {_clip(_short(new), limit)}")
    else:
        for key, value in (after or before).items():
            shown = _clip(_short(value), limit)
            lines.append(f"{key}: {shown}" if after else f"{key}: {shown} → —")
    return lines


_MODEL_NAMES: dict[str, str] = {}


def object_label(event: AuditEvent) -> str:
    """ "checklist item #12" from "readiness.checklistitem" and "12", without a query."""
    name = _MODEL_NAMES.get(event.object_type)
    if name is None:
        try:
            name = str(apps.get_model(event.object_type)._meta.verbose_name)
        except (LookupError, ValueError):
            name = event.object_type
        _MODEL_NAMES[event.object_type] = name
    return f"{name} #{event.object_id}"


def with_summaries(events) -> list[AuditEvent]:
    """Attach `changes` and `object_label` to the events of a page."""
    shown = list(events)
    for event in shown:
        event.changes = summarize(event.before, event.after)
        event.object_label = object_label(event)
    return shown


def actor_name(event: AuditEvent) -> str:
    return display_name(event.actor) if event.actor_id else SYSTEM


def _in_chain_order(events: QuerySet[AuditEvent]):
    # Exports list the chain as it was written, so each prev_hash follows a row above it.
    return events.order_by("id").iterator(chunk_size=2000)


def events_json(deployment: Deployment, events: QuerySet[AuditEvent], *, filters: dict) -> str:
    rows = []
    for event in _in_chain_order(events):
        rows.append(
            {
                "id": event.pk,
                **hashed_fields(event),
                "actor": event.actor.get_username() if event.actor_id else None,
                "actor_name": actor_name(event),
                "hash": event.hash,
            }
        )
    document = {
        "deployment": {
            "id": deployment.pk,
            "service": deployment.service,
            "environment": deployment.environment,
            "version": deployment.version,
            "team": deployment.team.slug,
        },
        "exported_at": timezone.now().isoformat(),
        "filters": {
            key: value.isoformat() if isinstance(value, date) else value
            for key, value in filters.items()
        },
        "hashing": (
            "hash = SHA-256 hex of the JSON object of prev_hash, created_at, actor_id, action, "
            "object_type, object_id, deployment_id, before, after, reason, ip and seq (when the "
            'event has one), with sorted keys and separators (",", ":"). Events with a seq are '
            "on this deployment's own chain: seq counts from 1 and prev_hash is the hash of the "
            "event at seq - 1 (64 zeros for the first). Events without one were written before "
            "chains were split per deployment: their prev_hash is the event written before "
            "them in any deployment. Events are in the order they were written."
        ),
        "events": rows,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def spreadsheet_safe(value) -> str:
    """A cell a spreadsheet shows as text: formula-like values get a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


CSV_COLUMNS = (
    "id",
    "time_utc",
    "actor",
    "actor_name",
    "action",
    "object",
    "changes",
    "reason",
    "ip",
    "before",
    "after",
    "prev_hash",
    "hash",
)


def events_csv(events: QuerySet[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in _in_chain_order(events):
        row = (
            event.pk,
            event.created_at.isoformat(),
            event.actor.get_username() if event.actor_id else "",
            actor_name(event),
            event.action,
            object_label(event),
            "; ".join(summarize(event.before, event.after, limit=None)),
            event.reason,
            event.ip or "",
            "" if event.before is None else json.dumps(event.before, sort_keys=True, default=str),
            "" if event.after is None else json.dumps(event.after, sort_keys=True, default=str),
            event.prev_hash,
            event.hash,
        )
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()
