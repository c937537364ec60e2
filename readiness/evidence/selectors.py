"""Reads of CI evidence shared by the pages, the record and the API."""

from django.db.models import QuerySet

from readiness.evidence.models import EvidenceVerdict


def verdicts_newest_first(deployment_ids) -> QuerySet[EvidenceVerdict]:
    """The deployments' verdicts per item, newest upload first: the first of an item is the
    one that counts (pages, the API, the record and what a signature binds)."""
    return EvidenceVerdict.objects.filter(evidence__deployment_id__in=deployment_ids).order_by(
        "item_id", "-evidence__uploaded_at", "-pk"
    )


def latest_verdicts(deployment_ids) -> dict[int, EvidenceVerdict]:
    """{item id: its newest evidence verdict} for the deployments' items, in one query."""
    latest: dict[int, EvidenceVerdict] = {}
    for verdict in verdicts_newest_first(deployment_ids).select_related("evidence__uploaded_by"):
        latest.setdefault(verdict.item_id, verdict)
    return latest
