"""Reads of CI evidence shared by the pages, the record and the API."""

import functools

from django.db import connection
from django.db.models import QuerySet

from readiness.evidence.models import Evidence, EvidenceVerdict
from readiness.sql import column, columns, from_row


def verdicts_newest_first(deployment_ids) -> QuerySet[EvidenceVerdict]:
    """The deployments' verdicts per item, newest upload first: the first of an item is the
    one that counts (pages, the API, the record and what a signature binds)."""
    return EvidenceVerdict.objects.filter(evidence__deployment_id__in=deployment_ids).order_by(
        "item_id", "-evidence__uploaded_at", "-pk"
    )


def latest_verdicts(deployment_ids, *, item_ids=None) -> dict[int, EvidenceVerdict]:
    """{item id: its newest evidence verdict} for the deployments' items (only those of
    `item_ids` if given), with its evidence and who uploaded it, in one query."""
    deployment_ids = [int(pk) for pk in deployment_ids]
    if not deployment_ids or (item_ids is not None and not item_ids):
        return {}
    item_ids = None if item_ids is None else [int(pk) for pk in item_ids]
    sql = _latest_verdicts_sql(len(deployment_ids), None if item_ids is None else len(item_ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, deployment_ids + (item_ids or []))
        rows = cursor.fetchall()
    verdict_width = len(EvidenceVerdict._meta.concrete_fields)
    evidence_end = verdict_width + len(Evidence._meta.concrete_fields)
    uploader = Evidence._meta.get_field("uploaded_by")
    evidence_of = EvidenceVerdict._meta.get_field("evidence")
    item_index = [field.name for field in EvidenceVerdict._meta.concrete_fields].index("item")
    latest: dict[int, EvidenceVerdict] = {}
    for row in rows:
        if row[item_index] in latest:  # an older verdict (a database without DISTINCT ON)
            continue
        verdict = from_row(EvidenceVerdict, row[:verdict_width])
        evidence = from_row(Evidence, row[verdict_width:evidence_end])
        uploader.set_cached_value(evidence, from_row(uploader.related_model, row[evidence_end:]))
        evidence_of.set_cached_value(verdict, evidence)
        latest[verdict.item_id] = verdict
    return latest


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


@functools.lru_cache(maxsize=64)
def _latest_verdicts_sql(deployments: int, items: int | None) -> str:
    """verdicts_newest_first()'s first verdict of each item, with select_related
    ("evidence__uploaded_by"), in SQL: built through the ORM (and every older verdict
    read too) it cost the checklist page more CPU than the database took to answer it.
    `deployments` ids, then `items` ids when only those items' are read."""
    quote = connection.ops.quote_name
    verdicts, evidence = EvidenceVerdict._meta, Evidence._meta
    users = evidence.get_field("uploaded_by").related_model._meta
    item = column(verdicts, "item")
    only = "" if items is None else f" AND v.{item} IN ({_placeholders(range(items))})"
    # DISTINCT ON keeps each item's first row, its newest verdict, in PostgreSQL; SQLite (the
    # embedded default) has no such clause and returns every verdict, of which the caller
    # keeps each item's first.
    distinct = f"DISTINCT ON (v.{item}) " if connection.features.can_distinct_on_fields else ""
    return (
        f"SELECT {distinct}{columns(verdicts, 'v')}, {columns(evidence, 'e')},"
        f" {columns(users, 'u')}"
        f" FROM {quote(verdicts.db_table)} v"
        f" INNER JOIN {quote(evidence.db_table)} e"
        f" ON e.{quote(evidence.pk.column)} = v.{column(verdicts, 'evidence')}"
        f" INNER JOIN {quote(users.db_table)} u"
        f" ON u.{quote(users.pk.column)} = e.{column(evidence, 'uploaded_by')}"
        f" WHERE e.{column(evidence, 'deployment')} IN ({_placeholders(range(deployments))})"
        f"{only}"
        f" ORDER BY v.{item}, e.{column(evidence, 'uploaded_at')} DESC,"
        f" v.{quote(verdicts.pk.column)} DESC"
    )


def latest_verdict_conflict(deployment_id: int, *, item_id: int) -> EvidenceVerdict | None:
    """An item's newest evidence verdict (as latest_verdicts picks it), read for its
    `conflict` alone (the other fields deferred, as .only() leaves them): all a saved item's
    row shows of it."""
    with connection.cursor() as cursor:
        cursor.execute(_latest_verdict_conflict_sql(), [deployment_id, item_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return EvidenceVerdict.from_db(
        connection.alias, [EvidenceVerdict._meta.pk.attname, "conflict"], row
    )


@functools.cache
def _latest_verdict_conflict_sql() -> str:
    """verdicts_newest_first's order for one item, in SQL: built through the ORM the query
    took more CPU to compile than to run, on every save of the checklist."""
    quote = connection.ops.quote_name
    verdicts, evidence = EvidenceVerdict._meta, Evidence._meta
    return (
        f"SELECT v.{quote(verdicts.pk.column)}, v.{column(verdicts, 'conflict')}"
        f" FROM {quote(verdicts.db_table)} v INNER JOIN {quote(evidence.db_table)} e"
        f" ON v.{column(verdicts, 'evidence')} = e.{quote(evidence.pk.column)}"
        f" WHERE e.{column(evidence, 'deployment')} = %s AND v.{column(verdicts, 'item')} = %s"
        f" ORDER BY e.{column(evidence, 'uploaded_at')} DESC, v.{quote(verdicts.pk.column)} DESC"
        " LIMIT 1"
    )
