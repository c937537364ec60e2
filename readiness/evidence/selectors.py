"""Reads of CI evidence shared by the pages, the record and the API."""

from readiness.evidence.models import EvidenceVerdict


def latest_verdicts(deployment_ids) -> dict[int, EvidenceVerdict]:
    """{item id: its newest evidence verdict} for the deployments' items, in one query."""
    latest: dict[int, EvidenceVerdict] = {}
    for verdict in (
        EvidenceVerdict.objects.filter(evidence__deployment_id__in=deployment_ids)
        .select_related("evidence__uploaded_by")
        .order_by("item_id", "-evidence__uploaded_at", "-pk")
    ):
        latest.setdefault(verdict.item_id, verdict)
    return latest
