"""Reads of CI evidence shared by the pages, the record and the API."""

from django.db.models import QuerySet

from readiness.evidence.models import EvidenceVerdict


def verdicts_newest_first(deployment_ids) -> QuerySet[EvidenceVerdict]:
    """The deployments' verdicts per item, newest upload first: the first of an item is the
    one that counts (pages, the API, the record and what a signature binds)."""
    return EvidenceVerdict.objects.filter(evidence__deployment_id__in=deployment_ids).order_by(
        "item_id", "-evidence__uploaded_at", "-pk"
    )


def latest_verdicts(deployment_ids, *, item_ids=None) -> dict[int, EvidenceVerdict]:
    """{item id: its newest evidence verdict} for the deployments' items (only those of
    `item_ids` if given), in one query."""
    latest: dict[int, EvidenceVerdict] = {}
    verdicts = verdicts_newest_first(deployment_ids)
    if item_ids is not None:
        verdicts = verdicts.filter(item_id__in=item_ids)
    for verdict in verdicts.select_related("evidence__uploaded_by"):
        latest.setdefault(verdict.item_id, verdict)
    return latest


def latest_verdict_conflict(deployment_id: int, *, item_id: int) -> EvidenceVerdict | None:
    """An item's newest evidence verdict (as latest_verdicts picks it), read for its
    `conflict` alone: all a saved item's row shows of it."""
    return verdicts_newest_first([deployment_id]).filter(item_id=item_id).only("conflict").first()
