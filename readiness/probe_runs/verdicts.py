"""What probe results propose for an item: one rule, read by runs, pages and records."""

from readiness.checklists.models import ItemStatus
from readiness.probes.base import Status


def item_verdict(statuses: list[str]) -> str | None:
    """The item's status a set of probe results proposes, or None to leave it to people.

    Any failure fails the item. Everything else must pass (or not apply) for it to be done:
    an error or a warning anywhere means the probes could not verify it.
    """
    if Status.FAIL in statuses:
        return ItemStatus.FAILED
    if Status.ERROR in statuses or Status.WARN in statuses:
        return None
    if Status.PASS in statuses:
        return ItemStatus.DONE
    return None
