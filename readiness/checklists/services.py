"""State changes of the checklist domain. Views and commands call these; nothing else writes."""

import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.apps import apps as global_apps
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from readiness.audit.services import audit_record
from readiness.checklists import markdown_import, signals
from readiness.checklists.models import (
    CLOSED_STATES,
    ChecklistItem,
    ChecklistTemplate,
    DecisionSource,
    Deployment,
    DeploymentSection,
    DeploymentState,
    ItemChange,
    ItemStatus,
    PostDeploymentCheck,
    Team,
)
from readiness.checklists.ownership import DEFAULT_SECTION_OWNERS
from readiness.checklists.progress import refresh_progress
from readiness.checklists.teams import require_item_owner, require_items_owner, require_member
from readiness.sql import column, holds, insert

DEFAULT_TEMPLATE_FILE = Path(__file__).parents[1] / "data" / "production-readiness-checklist.md"


def deployment_lock(deployment_id: int, **annotations) -> Deployment:
    """Re-read a deployment under its row lock, held until the transaction ends.

    The first lock of every write to a deployment (the one lock order: the deployment's row,
    then its items, then anything else; docs/architecture.md). It also serializes the
    deployment's audit chain. NO KEY UPDATE, so that rows referring to the deployment can
    still be inserted meanwhile (they only take KEY SHARE). `annotations` are read in the
    same statement (a layer above asks what it needs to know of the row without a second
    round trip).
    """
    return (
        Deployment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("team", "template")
        .annotate(**annotations)
        .get(pk=deployment_id)
    )


def store_parsed_template(
    *, apps, parsed: markdown_import.ParsedTemplate, source: str, is_default: bool, user_id=None
):
    """Write one new template version. Takes an app registry so migrations can use it too."""
    template_model = apps.get_model("readiness", "ChecklistTemplate")
    section_model = apps.get_model("readiness", "TemplateSection")
    item_model = apps.get_model("readiness", "TemplateItem")
    owners = _default_owner_roles(apps)
    latest = template_model.objects.filter(name=parsed.name).aggregate(v=Max("version"))["v"]
    template = template_model.objects.create(
        name=parsed.name,
        version=(latest or 0) + 1,
        introduction=parsed.introduction,
        source=source,
        content_sha256=parsed.sha256,
        sign_off_roles=list(parsed.sign_off_roles),
        has_deployment_date=parsed.has_deployment_date,
        post_deployment_items=list(parsed.post_deployment_items),
        is_default=is_default,
        created_by_id=user_id,
    )
    for section_position, parsed_section in enumerate(parsed.sections, start=1):
        section = section_model.objects.create(
            template=template, position=section_position, title=parsed_section.title
        )
        item_model.objects.bulk_create(
            item_model(
                section=section,
                position=item_position,
                title=item.title,
                description=item.description,
                qualifier=item.qualifier,
                **(
                    {"owner_role": owners[parsed_section.title]}
                    if parsed_section.title in owners
                    else {}
                ),
            )
            for item_position, item in enumerate(parsed_section.items, start=1)
        )
    return template


def _default_owner_roles(apps) -> dict:
    """Section title → the role owning its items by default (none before roles existed)."""
    try:
        item_model = apps.get_model("readiness", "TemplateItem")
        # Roles are the sign-off layer's rows: reached through the relation, not by name.
        role_model = item_model._meta.get_field("owner_role").related_model
    except FieldDoesNotExist:  # a migration running before roles existed
        return {}
    roles = {role.name: role for role in role_model.objects.all()}
    return {
        section: roles[role] for section, role in DEFAULT_SECTION_OWNERS.items() if role in roles
    }


IMPORT_TEMPLATE = "readiness.import_template"


@dataclass(frozen=True)
class ImportResult:
    template: ChecklistTemplate
    created: bool


@transaction.atomic
def template_import(
    *, source: str, name: str = "", user=None, max_bytes: int = markdown_import.MAX_BYTES
) -> ImportResult:
    """Import Markdown as a template; the same name and content again returns the existing one.

    Raises TemplateImportError (every problem with its line) and imports nothing on error.
    `user` None is the operator on the server (`manage.py import_template`); a person needs
    the permission, whatever else they are (staff alone is not enough).
    """
    if user is not None and not user.has_perm(IMPORT_TEMPLATE):
        raise PermissionDenied(
            "Importing templates needs the “Can import checklist templates” permission."
        )
    parsed = markdown_import.parse(source, default_name=name, max_bytes=max_bytes)
    if name and name != parsed.name:
        parsed = markdown_import.ParsedTemplate(**{**parsed.__dict__, "name": name})
    existing = ChecklistTemplate.objects.filter(
        name=parsed.name, content_sha256=parsed.sha256
    ).first()
    if existing:
        return ImportResult(template=existing, created=False)
    template = store_parsed_template(
        apps=global_apps,
        parsed=parsed,
        source=source,
        is_default=False,
        user_id=user.pk if user else None,
    )
    audit_record(
        actor=user,
        action="template.imported",
        obj=template,
        after={
            "name": template.name,
            "version": template.version,
            "sha256": template.content_sha256,
        },
    )
    return ImportResult(template=template, created=True)


@transaction.atomic
def deployment_create(
    *,
    user,
    team: Team,
    template: ChecklistTemplate,
    service: str,
    environment: str,
    version: str,
    planned_date: date | None,
) -> Deployment:
    """Create a deployment and snapshot the template's sections and items into it.

    The snapshot is what makes a later template change leave existing deployments alone.
    """
    require_member(team=team, user=user)
    deployment = Deployment.objects.create(
        team=team,
        template=template,
        service=service,
        environment=environment,
        version=version,
        planned_date=planned_date,
        owner=user,
    )
    template_sections = list(template.sections.prefetch_related("items"))
    sections = DeploymentSection.objects.bulk_create(
        DeploymentSection(deployment=deployment, position=s.position, title=s.title)
        for s in template_sections
    )
    ChecklistItem.objects.bulk_create(
        ChecklistItem(
            section=section,
            template_item=item,
            position=item.position,
            title=item.title,
            description=item.description,
            qualifier=item.qualifier,
            owner_role_id=item.owner_role_id,
        )
        for section, template_section in zip(sections, template_sections, strict=True)
        for item in template_section.items.all()
    )
    refresh_progress(deployment.pk)
    PostDeploymentCheck.objects.bulk_create(
        PostDeploymentCheck(deployment=deployment, position=position, label=label)
        for position, label in enumerate(template.post_deployment_items, start=1)
    )
    audit_record(
        actor=user,
        action="deployment.created",
        obj=deployment,
        deployment=deployment,
        after={
            "service": service,
            "environment": environment,
            "version": version,
            "planned_date": planned_date.isoformat() if planned_date else None,
            "team": team.slug,
            "template": str(template),
        },
    )
    return deployment


def _item_state(item: ChecklistItem) -> dict:
    return {
        "title": item.title,
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        "version": item.version,
    }


def _record_person_change(
    item: ChecklistItem, *, user, deployment, before: dict, previous_status, reason, now
) -> None:
    """A person's saved change in both trails: its audit event and its history row."""
    audit_record(
        actor=user,
        action="item.updated",
        obj=item,
        deployment=deployment,
        before=before,
        after=_item_state(item),
        reason=reason,
    )
    # Never read back in the request: written without the ORM's INSERT and its RETURNING.
    insert(
        ItemChange(
            item=item,
            version=item.version,
            changed_by=user,
            changed_at=now,
            source=DecisionSource.PERSON,
            reason=reason,
            previous_status=previous_status,
            status=item.status,
            note=item.note,
            evidence_url=item.evidence_url,
            na_reason=item.na_reason,
        )
    )


# An item edit's two writes in SQL: the ORM's UPDATEs, their WHERE clauses and values,
# took more CPU to compile than to run, on every save of the checklist. Each value goes
# through its field's get_db_prep_save, as the ORM's UPDATE passes it.


@functools.cache
def _stamp_deployment_sql(draft_only: bool) -> str:
    quote = connection.ops.quote_name
    meta = Deployment._meta
    states = ", ".join(["%s"] * len(CLOSED_STATES))
    return (
        f"UPDATE {quote(meta.db_table)} SET {column(meta, 'updated_at')} = %s"
        f" WHERE {quote(meta.pk.column)} = %s AND NOT ({column(meta, 'state')} IN ({states}))"
        + (f" AND {column(meta, 'state')} = %s" if draft_only else "")
    )


def _stamp_deployment(deployment_id: int, now, *, draft_only: bool) -> int:
    """Deployment.objects.filter(pk=…).exclude(state__in=CLOSED_STATES) (and, `draft_only`,
    .filter(state=DRAFT)) .update(updated_at=now): the rows it matched."""
    now = Deployment._meta.get_field("updated_at").get_db_prep_save(now, connection)
    params = [now, deployment_id, *CLOSED_STATES]
    if draft_only:
        params.append(DeploymentState.DRAFT)
    with connection.cursor() as cursor:
        cursor.execute(_stamp_deployment_sql(draft_only), params)
        return cursor.rowcount


@functools.cache
def _write_item_sql(fields: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    meta = ChecklistItem._meta
    version = column(meta, "version")
    assignments = "".join(f"{column(meta, field)} = %s, " for field in fields)
    return (
        f"UPDATE {quote(meta.db_table)} SET {assignments}{version} = {version} + 1"
        f" WHERE {quote(meta.pk.column)} = %s AND {version} = %s"
    )


def _write_item(item_id: int, expected_version: int, values: dict) -> int:
    """ChecklistItem.objects.filter(pk=item_id, version=expected_version).update(**values,
    version=F("version") + 1): the rows it matched (none when the version moved on)."""
    meta = ChecklistItem._meta
    if not holds(ChecklistItem, "version", expected_version):
        return 0  # no row holds such a version
    params = [
        meta.get_field(field).get_db_prep_save(value, connection) for field, value in values.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(_write_item_sql(tuple(values)), [*params, item_id, expected_version])
        return cursor.rowcount


CHANGE_REASON_REQUIRED = "Say why this item changes after sign-off was requested."


class RecordClosed(Exception):
    """The deployment was deployed: its checklist is part of a closed record."""


class StaleEdit(Exception):
    """The item changed after the page was loaded; `current` is the item as it is now."""

    def __init__(self, current: ChecklistItem):
        self.current = current
        super().__init__(f"'{current.title}' was changed since this page was loaded.")


@transaction.atomic
def item_update(
    *,
    item: ChecklistItem,
    user,
    expected_version: int,
    status: str,
    note: str,
    evidence_url: str,
    na_reason: str,
    reason: str = "",
) -> ChecklistItem:
    """Save an edit made on version `expected_version`; raise StaleEdit if it moved on since.

    A change needs a reason, kept with the change (its ItemChange, its audit event and, for a
    status, the item's `status_reason`), when it overrides a status a probe run set, and,
    once sign-off was requested, when it changes an item someone decided
    (`ChecklistItem.change_needs_reason`). Saving the values the item already holds changes
    nothing and needs none.

    Only members holding the item's owning role (any member for an item no role owns) may
    save it: PermissionDenied otherwise.
    """
    deployment = item.section.deployment
    # The owning role's holders alone change an item, overrides of its probe included.
    require_item_owner(item=item, team=deployment.team, user=user)
    closed = RecordClosed(
        f"The record is closed: this deployment is {deployment.get_state_display().lower()}"
        " and its checklist no longer changes."
    )
    if deployment.is_closed:
        raise closed
    if status not in ItemStatus.values:
        raise ValidationError({"status": "Unknown status."})
    note, evidence_url = note.strip(), evidence_url.strip()
    na_reason, reason = na_reason.strip(), reason.strip()
    if status == ItemStatus.NOT_APPLICABLE and not na_reason:
        raise ValidationError({"na_reason": "Say why this item does not apply."})
    if status != ItemStatus.NOT_APPLICABLE:
        na_reason = ""
    status_changed = status != item.status
    changed = (status, note, evidence_url, na_reason) != (
        item.status,
        item.note,
        item.evidence_url,
        item.na_reason,
    )
    overriding = status_changed and item.source == DecisionSource.PROBE
    # An edit made on an older version is refused as stale below, whatever it says.
    on_current_version = item.version == expected_version
    if overriding and not reason and on_current_version:
        raise ValidationError({"reason": "Say why you override the probe's verdict."})
    if changed and not reason and on_current_version and item.change_needs_reason(deployment):
        raise ValidationError({"reason": CHANGE_REASON_REQUIRED})
    # Read before the lock as a draft: sign-off must still not be requested when the edit
    # commits, or it needed a reason after all.
    must_be_draft = changed and not reason and on_current_version and item.is_decided
    previous_status = item.status
    now = timezone.now()
    # The deployment's row first (the lock order), in the statement that records the edit's
    # time: no second query, and a record closed (or a review requested) meanwhile refuses
    # the edit.
    if not _stamp_deployment(deployment.pk, now, draft_only=must_be_draft):
        if (
            must_be_draft
            and not Deployment.objects.filter(pk=deployment.pk, state__in=CLOSED_STATES).exists()
        ):
            raise ValidationError({"reason": CHANGE_REASON_REQUIRED})
        raise closed
    decision = {}
    if status_changed:
        decision = {"source": DecisionSource.PERSON, "status_reason": reason}
    # The version in the WHERE clause is the lock: of two edits made on the same version,
    # only the first matches a row.
    updated = _write_item(
        item.pk,
        expected_version,
        {
            "status": status,
            "note": note,
            "evidence_url": evidence_url,
            "na_reason": na_reason,
            "updated_by": user.pk,
            "updated_at": now,
            **decision,
        },
    )
    if not updated:
        current = ChecklistItem.objects.select_related("updated_by").get(pk=item.pk)
        raise StaleEdit(current)
    if status_changed:
        refresh_progress(deployment.pk)
    before = _item_state(item)
    section = item.section
    if item.version == expected_version:
        # The row matched the version this copy was read at, so it now holds exactly what
        # was written: no second read.
        item.status, item.note, item.evidence_url, item.na_reason = (
            status,
            note,
            evidence_url,
            na_reason,
        )
        item.updated_by, item.updated_at, item.version = user, now, expected_version + 1
        for field, value in decision.items():
            setattr(item, field, value)
    else:  # read at another version than the edit's: read what the row holds now
        item.refresh_from_db()
        item.section = section  # refresh_from_db drops the cached relations; keep them
    _record_person_change(
        item,
        user=user,
        deployment=section.deployment,
        before=before,
        previous_status=previous_status,
        reason=reason,
        now=now,
    )
    signals.checklist_changed.send(
        sender=Deployment,
        deployment=section.deployment,
        actor=user,
        item=item,
        status_changed=status_changed,
    )
    return item


@dataclass(frozen=True)
class BulkResult:
    changed: list[ChecklistItem]
    unchanged: list[ChecklistItem]  # held the status already: nothing to record


@transaction.atomic
def items_set_status(
    *, deployment: Deployment, item_ids: list[int], user, status: str, reason: str
) -> BulkResult:
    """Set one status, with one reason, on several items of a deployment: all of them or
    none. Each changed item gets its own ItemChange and `item.updated` audit event (the
    reason on each), as if edited one by one; an item already holding the status is left
    alone. Refused whole (PermissionDenied) when `user` may not change one of them, and
    when the record is closed (RecordClosed).

    The reason is required, so a bulk change meets every rule a single edit can meet with
    one (an override of a probe, a change after sign-off was requested); for "Not
    applicable" it is also the item's n/a reason.
    """
    reason = reason.strip()
    if status not in ItemStatus.values:
        raise ValidationError({"status": "Unknown status."})
    if not reason:
        raise ValidationError({"reason": "Say why these items change."})
    ids = sorted(set(item_ids))
    if not ids:
        raise ValidationError({"items": "Select the items to change first."})
    # The lock order: the deployment's row, then its items (in id order, as every bulk
    # writer takes them), then the audit chain.
    deployment = deployment_lock(deployment.pk)
    if deployment.is_closed:
        raise RecordClosed(
            f"The record is closed: this deployment is {deployment.get_state_display().lower()}"
            " and its checklist no longer changes."
        )
    items = list(
        ChecklistItem.objects.select_for_update(of=("self",))
        .filter(section__deployment=deployment, pk__in=ids)
        .select_related("owner_role")
        .order_by("pk")
    )
    if len(items) != len(ids):
        raise ValidationError({"items": "An item selected is not on this checklist."})
    require_items_owner(items=items, team=deployment.team, user=user)
    na_reason = reason if status == ItemStatus.NOT_APPLICABLE else ""
    now = timezone.now()
    changed = [item for item in items if item.status != status]
    unchanged = [item for item in items if item.status == status]
    for item in changed:
        before = _item_state(item)
        previous_status = item.status
        item.status, item.na_reason = status, na_reason
        item.source, item.status_reason = DecisionSource.PERSON, reason
        item.updated_by, item.updated_at = user, now
        item.version += 1
        item.save(
            update_fields=[
                "status",
                "na_reason",
                "source",
                "status_reason",
                "updated_by",
                "updated_at",
                "version",
            ]
        )
        _record_person_change(
            item,
            user=user,
            deployment=deployment,
            before=before,
            previous_status=previous_status,
            reason=reason,
            now=now,
        )
    if changed:
        Deployment.objects.filter(pk=deployment.pk).update(updated_at=now)
        refresh_progress(deployment.pk)
        # Once for the whole change, without an item: every role's approval is looked at.
        signals.checklist_changed.send(sender=Deployment, deployment=deployment, actor=user)
    return BulkResult(changed=changed, unchanged=unchanged)


@transaction.atomic
def item_set_by_machine(
    *,
    item: ChecklistItem,
    status: str,
    source: str,
    reason: str,
    deployment: Deployment,
    actor=None,
    probe_run=None,
    audit_after: dict | None = None,
) -> bool:
    """A probe run or uploaded evidence sets an item, unless a person decided it or it moved
    since `item` was read (the version is the lock). Records the item's history and an audit
    event; returns whether the item changed."""
    deployment = deployment_lock(deployment.pk)
    now = timezone.now()
    updated = (
        ChecklistItem.objects.filter(pk=item.pk, version=item.version)
        .exclude(source=DecisionSource.PERSON)
        .update(
            status=status,
            na_reason="",
            source=source,
            status_reason=reason,
            updated_by=actor,
            updated_at=now,
            version=F("version") + 1,
        )
    )
    if not updated:
        return False
    if status != item.status:
        refresh_progress(deployment.pk)
    ItemChange.objects.create(
        item=item,
        version=item.version + 1,
        changed_by=actor,
        changed_at=now,
        source=source,
        reason=reason,
        probe_run=probe_run,
        previous_status=item.status,
        status=status,
        note=item.note,
        evidence_url=item.evidence_url,
    )
    audit_record(
        actor=actor,
        action=f"item.set_by_{source}",
        obj=item,
        deployment=deployment,
        before={"status": item.status, "version": item.version},
        after={"status": status, "version": item.version + 1, **(audit_after or {})},
        reason=reason,
    )
    return True
