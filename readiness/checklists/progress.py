"""Each deployment's progress, kept as counters on its row.

Lists of deployments (the dashboard, its pages and filters) read these columns instead of
aggregating every checklist item. Every write that changes an item's status calls
`refresh_progress` in its transaction, after the item write and while it holds the
deployment's row (the first lock of the one lock order), so the counters commit with the
items they count and two writers to one deployment cannot interleave their refreshes.
"""

from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from readiness.checklists.models import ChecklistItem, Deployment, ItemStatus

# counter column → the status it counts (None: every item).
COUNTERS = {
    "items_total": None,
    "items_done": ItemStatus.DONE,
    "items_not_applicable": ItemStatus.NOT_APPLICABLE,
    "items_failed": ItemStatus.FAILED,
}


def counter_expressions(item_model=ChecklistItem) -> dict:
    """{counter column: a subquery counting the outer deployment's items}.

    Takes the item model so that the data migration can pass its historical one.
    """
    items = (
        item_model.objects.filter(section__deployment=OuterRef("pk"))
        .order_by()
        .values("section__deployment")
    )
    expressions = {}
    for column, status in COUNTERS.items():
        count = Count("pk", filter=Q(status=status)) if status else Count("pk")
        # A deployment without items has no group at all: NULL, which means 0 here.
        expressions[column] = Coalesce(Subquery(items.annotate(n=count).values("n")[:1]), 0)
    return expressions


def refresh_progress(deployment_id: int) -> None:
    """Recount one deployment's items into its counters: one UPDATE over that deployment's
    items only, whatever changed (so every write path calls the same thing)."""
    Deployment.objects.filter(pk=deployment_id).update(**counter_expressions())


def drifted(deployments=None):
    """The deployments (of `deployments`, default all) whose counters differ from a fresh
    count of their items."""
    deployments = Deployment.objects.all() if deployments is None else deployments
    fresh = {f"fresh_{column}": expression for column, expression in counter_expressions().items()}
    same = {column: F(f"fresh_{column}") for column in COUNTERS}
    # exclude(a, b, …) is NOT (a AND b AND …): any one counter off is drift.
    return deployments.alias(**fresh).exclude(**same)


def repair_progress(*, batch_size: int = 1000, fix: bool = False) -> list[int]:
    """Ids of the deployments whose counters drifted, checked in batches of ids; with `fix`,
    each batch's drifted rows are recounted in a short transaction of their own."""
    found: list[int] = []
    last_id = 0
    while True:
        batch = list(
            Deployment.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return found
        last_id = batch[-1]
        ids = list(
            drifted(Deployment.objects.filter(pk__in=batch))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        found += ids
        if fix and ids:
            with transaction.atomic():
                # Lock first, count in a later statement: an UPDATE that waited for a writer's
                # lock would count with the snapshot taken before that writer committed.
                list(
                    Deployment.objects.select_for_update(no_key=True)
                    .filter(pk__in=ids)
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
                Deployment.objects.filter(pk__in=ids).update(**counter_expressions())
