"""Reads about stored records shared by the verification page and `manage.py verify_record`."""

import datetime
import functools
from dataclasses import dataclass
from typing import Protocol

from django.db import connection
from django.db.models import OuterRef, Subquery

from readiness.sql import ModelColumns, column, model_columns
from signoff.records.models import SignedRecord


class NumberedRecord(Protocol):
    """A stored record as either the model or the verification report's row holds it."""

    deployment_id: int
    number: int


@dataclass(frozen=True)
class RecordStanding:
    """Whether a record is still its deployment's latest. A later record supersedes it: the
    file stays valid, it just no longer is what the deployment's latest record says."""

    number: int
    latest: bool
    superseded_by_number: int | None = None
    superseded_at: datetime.datetime | None = None
    # The deployment's newest record, when it is neither this one nor its direct successor.
    latest_number: int | None = None

    @property
    def summary(self) -> str:
        """One line for the verification report."""
        if self.latest:
            return f"the latest record of its deployment (record {self.number})"
        moment = self.superseded_at.astimezone(datetime.UTC)
        newest = f"; the latest is record {self.latest_number}" if self.latest_number else ""
        return (
            f"record {self.number}, superseded by record {self.superseded_by_number} of this "
            f"deployment on {moment:%Y-%m-%d %H:%M} UTC{newest}"
        )


def record_standing(record: NumberedRecord) -> RecordStanding:
    """The record's standing among its deployment's records, in one query whatever their
    number: the record right after it (which superseded it, and when) and the newest one."""
    later = SignedRecord.objects.filter(
        deployment_id=record.deployment_id, number__gt=record.number
    )
    successor = (
        later.order_by("number")
        .annotate(
            newest=Subquery(
                SignedRecord.objects.filter(deployment_id=OuterRef("deployment_id"))
                .order_by("-number")
                .values("number")[:1]
            )
        )
        .values("number", "created_at", "newest")
        .first()
    )
    if successor is None:
        return RecordStanding(number=record.number, latest=True)
    newest = successor["newest"]
    return RecordStanding(
        number=record.number,
        latest=False,
        superseded_by_number=successor["number"],
        superseded_at=successor["created_at"],
        latest_number=newest if newest != successor["number"] else None,
    )


def records_newest_first(deployment_id: int) -> list[SignedRecord]:
    """The deployment's records, newest first (the checklist page's downloads). Written in
    SQL: built through the ORM, the statement cost more CPU to compile than to run, on every
    checklist page."""
    with connection.cursor() as cursor:
        cursor.execute(_records_sql(), [deployment_id])
        rows = cursor.fetchall()
    records = _record_columns()
    return [records.instance(row) for row in rows]


@functools.cache
def _record_columns() -> ModelColumns:
    return model_columns(SignedRecord)


@functools.cache
def _records_sql() -> str:
    meta = SignedRecord._meta
    return (
        f"SELECT {_record_columns().select('r')} FROM {connection.ops.quote_name(meta.db_table)} r"
        f" WHERE r.{column(meta, 'deployment')} = %s ORDER BY r.{column(meta, 'number')} DESC"
    )
