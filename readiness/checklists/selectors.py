"""Reads shared by views, commands and (later) the PDF; they own the query shapes."""

import functools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet

from readiness.checklists.models import (
    AwsAccount,
    ChecklistItem,
    ChecklistTemplate,
    DecisionSource,
    Deployment,
    DeploymentSection,
    ItemChange,
    ItemStatus,
    PostDeploymentCheck,
    Team,
)
from readiness.people import NAME_FIELDS
from readiness.sql import ModelColumns, column, columns, from_row, holds, instances, model_columns


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    not_applicable: int
    failed: int

    @property
    def complete(self) -> int:
        return self.done + self.not_applicable

    @property
    def open(self) -> int:
        return self.total - self.complete - self.failed

    @property
    def percent(self) -> int:
        return round(100 * self.complete / self.total) if self.total else 0

    @classmethod
    def of_deployment(cls, deployment) -> "Progress":
        """From the counters kept on the deployment's row (readiness.checklists.progress)."""
        return cls(
            total=deployment.items_total,
            done=deployment.items_done,
            not_applicable=deployment.items_not_applicable,
            failed=deployment.items_failed,
        )

    @classmethod
    def of(cls, items) -> "Progress":
        statuses = [item.status for item in items]
        return cls(
            total=len(statuses),
            done=statuses.count(ItemStatus.DONE),
            not_applicable=statuses.count(ItemStatus.NOT_APPLICABLE),
            failed=statuses.count(ItemStatus.FAILED),
        )


PROGRESS_FIELDS = ("items_total", "items_done", "items_not_applicable", "items_failed")


def _progress_counts() -> dict:
    return {
        "total_items": Count("id"),
        "done_items": Count("id", filter=Q(status=ItemStatus.DONE)),
        "na_items": Count("id", filter=Q(status=ItemStatus.NOT_APPLICABLE)),
        "failed_items": Count("id", filter=Q(status=ItemStatus.FAILED)),
    }


def _progress_from(row: dict) -> Progress:
    return Progress(
        total=row["total_items"],
        done=row["done_items"],
        not_applicable=row["na_items"],
        failed=row["failed_items"],
    )


def teams_of(user) -> QuerySet[Team]:
    return Team.objects.filter(members=user)


def deployments_visible_to(user) -> QuerySet[Deployment]:
    """Only the user's teams' deployments exist for them; anything else is a 404."""
    if not user.is_authenticated:
        return Deployment.objects.none()
    return Deployment.objects.filter(team__members=user).select_related("team", "template", "owner")


def dashboard_deployments(
    *, user, team: str = "", state: str = "", text: str = ""
) -> QuerySet[Deployment]:
    deployments = deployments_visible_to(user)
    if team:
        deployments = deployments.filter(team__slug=team)
    if state:
        deployments = deployments.filter(state=state)
    for word in text.split():
        deployments = deployments.filter(
            Q(service__icontains=word) | Q(environment__icontains=word) | Q(version__icontains=word)
        )
    # Progress comes from the row's counters: neither this page query nor the paginator's
    # count reads an item.
    return deployments.order_by("-created_at", "-pk")


def deployment_progress(deployment) -> Progress:
    """As committed now (the caller's instance may predate an edit): one read of the row."""
    return Progress.of_deployment(Deployment.objects.only(*PROGRESS_FIELDS).get(pk=deployment.pk))


def section_progress(section) -> Progress:
    return _progress_from(
        ChecklistItem.objects.filter(section=section).aggregate(**_progress_counts())
    )


def deployment_sections(deployment) -> list[DeploymentSection]:
    """Every section with its items (and who changed them, their owner role) in two
    queries, plus progress."""
    items = ChecklistItem.objects.select_related("updated_by", "owner_role").order_by("position")
    sections = list(
        DeploymentSection.objects.filter(deployment=deployment)
        .order_by("position")
        .prefetch_related(Prefetch("items", queryset=items))
    )
    for section in sections:
        section.progress = Progress.of(section.items.all())
    return sections


# What the checklist page shows of who last changed an item (its name).
EDITOR_FIELDS = ("id", "username", "first_name", "last_name")


def checklist_sections(deployment, *, roles: dict) -> list[DeploymentSection]:
    """The checklist page's read of deployment_sections: every section in order, its items
    in order as `section.item_list` (each with its `section`, who changed it read for their
    name only, and its owner role taken from `roles` {id: Role}, every role), plus progress.

    One statement, written in SQL: built through the ORM (a prefetch of the items, joined
    to who changed them) its compiling and the prefetch machinery cost the page more CPU
    than the database took to answer it."""
    with connection.cursor() as cursor:
        cursor.execute(_checklist_sections_sql(), [deployment.pk])
        rows = cursor.fetchall()
    editor_model = ChecklistItem._meta.get_field("updated_by").related_model
    section_width = len(DeploymentSection._meta.concrete_fields)
    item_end = section_width + len(ChecklistItem._meta.concrete_fields)
    section_cache = ChecklistItem._meta.get_field("section")
    editor_cache = ChecklistItem._meta.get_field("updated_by")
    sections: list[DeploymentSection] = []
    section = None
    for row in rows:
        if section is None or section.id != row[0]:
            section = from_row(DeploymentSection, row[:section_width])
            section.item_list = []
            sections.append(section)
        if row[section_width] is None:  # a section without items
            continue
        item = from_row(ChecklistItem, row[section_width:item_end])
        section_cache.set_cached_value(item, section)
        editor_cache.set_cached_value(
            item,
            from_row(editor_model, row[item_end:], EDITOR_FIELDS)
            if row[item_end] is not None
            else None,
        )
        if item.owner_role_id is not None:
            item.owner_role = roles[item.owner_role_id]
        section.item_list.append(item)
    for section in sections:
        section.progress = Progress.of(section.item_list)
    return sections


@functools.cache
def _checklist_sections_sql() -> str:
    quote = connection.ops.quote_name
    sections, items = DeploymentSection._meta, ChecklistItem._meta
    editors = items.get_field("updated_by").related_model._meta
    return (
        f"SELECT {columns(sections, 's')}, {columns(items, 'i')},"
        f" {columns(editors, 'u', EDITOR_FIELDS)}"
        f" FROM {quote(sections.db_table)} s"
        f" LEFT JOIN {quote(items.db_table)} i"
        f" ON i.{column(items, 'section')} = s.{column(sections, 'id')}"
        f" LEFT JOIN {quote(editors.db_table)} u"
        f" ON u.{column(editors, 'id')} = i.{column(items, 'updated_by')}"
        f" WHERE s.{column(sections, 'deployment')} = %s"
        f" ORDER BY s.{column(sections, 'position')}, i.{column(items, 'position')}"
    )


def read_aws_accounts(deployment) -> None:
    """Read the deployment's AWS accounts, by account id, into `deployment.aws_accounts` as
    prefetch_related_objects leaves them (`.all()` and Deployment.aws_regions then use
    them). By account id: AwsAccount's ordering (deployment, then account) would join the
    deployment to sort the accounts of one deployment."""
    # Written in SQL: prefetch_related_objects' machinery and the ORM's compiling of its
    # query cost the checklist page more CPU than the database took to answer it.
    with connection.cursor() as cursor:
        cursor.execute(_aws_accounts_sql(), [deployment.pk])
        accounts = [from_row(AwsAccount, row) for row in cursor.fetchall()]
    of_deployment = AwsAccount._meta.get_field("deployment")
    for account in accounts:
        of_deployment.set_cached_value(account, deployment)
    queryset = deployment.aws_accounts.order_by("account_id")
    queryset._result_cache = accounts
    queryset._prefetch_done = True
    if not hasattr(deployment, "_prefetched_objects_cache"):
        deployment._prefetched_objects_cache = {}
    deployment._prefetched_objects_cache[of_deployment.remote_field.cache_name] = queryset


@functools.cache
def _aws_accounts_sql() -> str:
    accounts = AwsAccount._meta
    return (
        f"SELECT {columns(accounts, 'a')} FROM {connection.ops.quote_name(accounts.db_table)} a"
        f" WHERE a.{column(accounts, 'deployment')} = %s"
        f" ORDER BY a.{column(accounts, 'account_id')}"
    )


def item_ids_of(deployment) -> list[int]:
    return list(
        ChecklistItem.objects.filter(section__deployment=deployment).values_list("pk", flat=True)
    )


def overridden_item_ids(deployment, item_ids=None) -> set[int]:
    """Ids of the deployment's items decided by a person who replaced a status a probe run
    had set (an override, which needed a reason): one query over the items' histories,
    whatever their length. `item_ids` limits it to those items."""
    # Written in SQL: the same query built through the ORM (two nested correlated
    # subqueries) cost the checklist page more CPU to compile than any other of its reads.
    # An override: a person's change that moved the status, where the latest earlier
    # change that set a status (a probe's always does; a person's when the status moved,
    # not for a note alone) was a probe's.
    only = ""
    params: list = [deployment.pk, DecisionSource.PERSON]
    if item_ids is not None:
        item_ids = [int(pk) for pk in item_ids]
        if not item_ids:
            return set()
        only = f" AND i.id IN ({', '.join(['%s'] * len(item_ids))})"
        params += item_ids
    params += [DecisionSource.PERSON, DecisionSource.PROBE, DecisionSource.PROBE]
    items, sections = ChecklistItem._meta.db_table, DeploymentSection._meta.db_table
    changes = ItemChange._meta.db_table
    sql = f"""
        SELECT i.id FROM {items} i
        INNER JOIN {sections} s ON s.id = i.section_id
        WHERE s.deployment_id = %s AND i.source = %s{only}
        AND EXISTS (
            SELECT 1 FROM {changes} c
            WHERE c.item_id = i.id AND c.source = %s AND c.status <> c.previous_status
            AND (
                SELECT e.source FROM {changes} e
                WHERE e.item_id = c.item_id AND e.version < c.version
                AND (e.source = %s OR e.status <> e.previous_status)
                ORDER BY e.version DESC LIMIT 1
            ) = %s
        )
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {pk for (pk,) in cursor.fetchall()}


def item_of_deployment(*, deployment, item_id: int) -> QuerySet[ChecklistItem]:
    return ChecklistItem.objects.select_related(
        "section__deployment__team", "updated_by", "owner_role"
    ).filter(pk=item_id, section__deployment=deployment)


def item_visible_to(user, *, deployment_id: int, item_id: int) -> ChecklistItem | None:
    """An item of a deployment `user` may see (deployments_visible_to), with that deployment
    read as deployments_visible_to reads it and the item as item_of_deployment does: the
    access check and the item in one query. None when there is none, or it is not theirs
    to see."""
    if not (
        user.is_authenticated
        and holds(ChecklistItem, "id", item_id)
        and holds(Deployment, "id", deployment_id)
    ):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_item_visible_to_sql(), [item_id, deployment_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    item, section, deployment, team, template, owner, owner_role, updated_by = instances(
        _VISIBLE_ITEM_MODELS, row
    )
    # What select_related("section__deployment__team", "section__deployment__template",
    # "section__deployment__owner", "updated_by", "owner_role") would have cached.
    for obj, field, related in (
        (deployment, "team", team),
        (deployment, "template", template),
        (deployment, "owner", owner),
        (section, "deployment", deployment),
        (item, "section", section),
        (item, "owner_role", owner_role),
        (item, "updated_by", updated_by),
    ):
        obj._meta.get_field(field).set_cached_value(obj, related)
    return item


def _related(model, field: str):
    return model._meta.get_field(field).related_model


# The rows item_visible_to reads side by side, in its statement's order.
_VISIBLE_ITEM_MODELS = (
    ChecklistItem,
    DeploymentSection,
    Deployment,
    Team,
    ChecklistTemplate,
    _related(Deployment, "owner"),
    _related(ChecklistItem, "owner_role"),
    _related(ChecklistItem, "updated_by"),
)


@functools.cache
def _item_visible_to_sql() -> str:
    """item_visible_to's read in SQL, the ORM's joins: the item read by every save of the
    checklist, whose statement (eight tables' columns, select_related's joins) took more CPU
    to compile than to run."""
    quote = connection.ops.quote_name
    items, sections, deployments = ChecklistItem._meta, DeploymentSection._meta, Deployment._meta
    members = Team.members.through._meta
    owners, roles, editors = (model._meta for model in _VISIBLE_ITEM_MODELS[5:])
    aliases = ("i", "s", "d", "t", "tp", "o", "r", "u")
    select = ", ".join(
        columns(model._meta, alias)
        for model, alias in zip(_VISIBLE_ITEM_MODELS, aliases, strict=True)
    )

    def pk(meta, alias: str) -> str:
        return f"{alias}.{quote(meta.pk.column)}"

    return (
        f"SELECT {select} FROM {quote(items.db_table)} i"
        f" INNER JOIN {quote(sections.db_table)} s"
        f" ON i.{column(items, 'section')} = {pk(sections, 's')}"
        f" INNER JOIN {quote(deployments.db_table)} d"
        f" ON s.{column(sections, 'deployment')} = {pk(deployments, 'd')}"
        f" INNER JOIN {quote(Team._meta.db_table)} t"
        f" ON d.{column(deployments, 'team')} = {pk(Team._meta, 't')}"
        f" INNER JOIN {quote(members.db_table)} m"
        f" ON {pk(Team._meta, 't')} = m.{column(members, 'team')}"
        f" INNER JOIN {quote(ChecklistTemplate._meta.db_table)} tp"
        f" ON d.{column(deployments, 'template')} = {pk(ChecklistTemplate._meta, 'tp')}"
        f" INNER JOIN {quote(owners.db_table)} o"
        f" ON d.{column(deployments, 'owner')} = {pk(owners, 'o')}"
        f" LEFT OUTER JOIN {quote(roles.db_table)} r"
        f" ON i.{column(items, 'owner_role')} = {pk(roles, 'r')}"
        f" LEFT OUTER JOIN {quote(editors.db_table)} u"
        f" ON i.{column(items, 'updated_by')} = {pk(editors, 'u')}"
        f" WHERE {pk(items, 'i')} = %s AND s.{column(sections, 'deployment')} = %s"
        f" AND m.{column(members, 'user')} = %s"
    )


def deployment_visible_to(user, deployment_id: int) -> Deployment | None:
    """The deployment of that id if `user` may see it, read as deployments_visible_to reads
    it (every field, its team, template and owner held without a query); None when there is
    none, or it is not theirs to see. Written in SQL: the ORM's statement (three joined rows
    and the team's members) cost the checklist page more CPU to build and compile than the
    database took to answer it."""
    if not (user.is_authenticated and holds(Deployment, "id", deployment_id)):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_deployment_visible_to_sql(), [deployment_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    deployment, team, template, owner = instances(_VISIBLE_DEPLOYMENT_MODELS, row)
    for field, related in (
        (_DEPLOYMENT_TEAM, team),
        (_DEPLOYMENT_TEMPLATE, template),
        (_DEPLOYMENT_OWNER, owner),
    ):
        field.set_cached_value(deployment, related)
    return deployment


# The rows deployment_visible_to reads side by side, in its statement's order.
_VISIBLE_DEPLOYMENT_MODELS = (Deployment, Team, ChecklistTemplate, _related(Deployment, "owner"))
_DEPLOYMENT_TEAM, _DEPLOYMENT_TEMPLATE, _DEPLOYMENT_OWNER = (
    Deployment._meta.get_field(name) for name in ("team", "template", "owner")
)


@functools.cache
def _deployment_visible_to_sql() -> str:
    quote = connection.ops.quote_name
    deployments, teams, templates = Deployment._meta, Team._meta, ChecklistTemplate._meta
    owners = _VISIBLE_DEPLOYMENT_MODELS[3]._meta
    members = Team.members.through._meta
    select = ", ".join(
        columns(model._meta, alias)
        for model, alias in zip(_VISIBLE_DEPLOYMENT_MODELS, ("d", "t", "tp", "o"), strict=True)
    )

    def pk(meta, alias: str) -> str:
        return f"{alias}.{quote(meta.pk.column)}"

    return (
        f"SELECT {select} FROM {quote(deployments.db_table)} d"
        f" INNER JOIN {quote(teams.db_table)} t"
        f" ON d.{column(deployments, 'team')} = {pk(teams, 't')}"
        f" INNER JOIN {quote(members.db_table)} m"
        f" ON {pk(teams, 't')} = m.{column(members, 'team')}"
        f" INNER JOIN {quote(templates.db_table)} tp"
        f" ON d.{column(deployments, 'template')} = {pk(templates, 'tp')}"
        f" INNER JOIN {quote(owners.db_table)} o"
        f" ON d.{column(deployments, 'owner')} = {pk(owners, 'o')}"
        f" WHERE {pk(deployments, 'd')} = %s AND m.{column(members, 'user')} = %s"
    )


def item_history(item) -> QuerySet:
    return item.changes.select_related("changed_by").order_by("-version")


def item_histories(item_ids) -> dict[int, list[ItemChange]]:
    """{item id: every change of the item, oldest first, with who made it}, in one query."""
    histories: dict[int, list[ItemChange]] = {}
    for change in (
        ItemChange.objects.filter(item_id__in=item_ids)
        .select_related("changed_by")
        .order_by("item_id", "version")
    ):
        histories.setdefault(change.item_id, []).append(change)
    return histories


def latest_templates() -> list[ChecklistTemplate]:
    """The newest version of each template name, the default one first."""
    templates = ChecklistTemplate.objects.order_by("name", "-version").annotate(
        item_count=Count("sections__items")
    )
    latest: dict[str, ChecklistTemplate] = {}
    for template in templates:
        latest.setdefault(template.name, template)
    return sorted(latest.values(), key=lambda t: (not t.is_default, t.name))


def default_template() -> ChecklistTemplate | None:
    return ChecklistTemplate.objects.filter(is_default=True).first()


def template_or_default(template_id: int | None) -> ChecklistTemplate | None:
    """The template asked for, else the default one; None when neither exists."""
    if template_id is None:
        return default_template()
    return ChecklistTemplate.objects.filter(pk=template_id).first()


def team_for(user, slug: str | None) -> Team | None:
    """The user's team of that slug, or with no slug their only team; None otherwise."""
    teams = teams_of(user)
    if slug:
        return teams.filter(slug=slug).first()
    return teams.get() if teams.count() == 1 else None


def post_checks(deployment_id: int) -> list[PostDeploymentCheck]:
    """The deployment's Post-Deployment Notes in order, each `checked_by` (None where no one
    ticked it) by names only (NAME_FIELDS). Written in SQL: built through the ORM, the
    statement (a join of whole user rows) cost more CPU to compile than to run, on every
    checklist page."""
    checks, users = _post_check_columns()
    with connection.cursor() as cursor:
        cursor.execute(_post_checks_sql(), [deployment_id])
        rows = cursor.fetchall()
    found = []
    for row in rows:
        check = checks.instance(row[: checks.width])
        check.checked_by = (
            users.instance(row[checks.width :]) if check.checked_by_id is not None else None
        )
        found.append(check)
    return found


@functools.cache
def _post_check_columns() -> tuple[ModelColumns, ModelColumns]:
    return model_columns(PostDeploymentCheck), model_columns(get_user_model(), NAME_FIELDS)


@functools.cache
def _post_checks_sql() -> str:
    quote = connection.ops.quote_name
    checks, users = _post_check_columns()
    meta, user_meta = PostDeploymentCheck._meta, get_user_model()._meta
    return (
        f"SELECT {checks.select('c')}, {users.select('u')} FROM {quote(meta.db_table)} c"
        f" LEFT OUTER JOIN {quote(user_meta.db_table)} u"
        f" ON u.{quote(user_meta.pk.column)} = c.{column(meta, 'checked_by')}"
        f" WHERE c.{column(meta, 'deployment')} = %s ORDER BY c.{column(meta, 'position')}"
    )
