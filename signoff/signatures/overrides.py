"""What a signer approves besides the items' statuses: the people who overrode a failing probe
and the waivers in force, on one deployment, for every role page.

A signature binds each status and waiver (`selectors.canonical_state`), but a status of
"done" reads the same whether the probes agree or a person overrode them. Listing the
overrides, with the probe's finding and the reason given, and the waivers, with who accepted
the risk until when, is what lets the person signing see what they approve.
"""

from dataclasses import dataclass
from datetime import datetime

from readiness.checklists.models import (
    COMPLETE_STATUSES,
    ChecklistItem,
    DecisionSource,
    Deployment,
    ItemChange,
    ItemStatus,
)
from readiness.checklists.selectors import item_histories
from readiness.people import display_name
from readiness.probe_runs.models import ProbeOutcome
from readiness.probe_runs.selectors import run_numbers
from readiness.probe_runs.verdicts import item_verdict
from signoff.signatures.models import Waiver
from signoff.signatures.selectors import drift_evidence, latest_results, setter_of

# Who a change without a person was made by, as the override list names it.
MACHINE_AUTHORS = {DecisionSource.PROBE: "a probe run", DecisionSource.EVIDENCE: "CI evidence"}


@dataclass(frozen=True)
class ProbeOverride:
    """An item a person marked done or not applicable while its latest probe verdict fails.

    `by` is the change that gave the item its status (who, when, why), when its history says;
    `failing` the failing probe results (probe, region, summary, `detail` naming the first
    failing resource, `checked_on`, `run_number`)."""

    item: ChecklistItem
    by: ItemChange | None
    failing: list[dict]

    @property
    def who(self) -> str:
        """Who gave the item its status: the change's author, else the item's last editor."""
        if self.by is not None:
            if self.by.changed_by is not None:
                return display_name(self.by.changed_by)
            return MACHINE_AUTHORS.get(self.by.source, "someone")
        return display_name(self.item.updated_by) if self.item.updated_by else "someone"

    @property
    def when(self) -> datetime | None:
        return self.by.changed_at if self.by is not None else self.item.updated_at

    @property
    def reason(self) -> str:
        return self.by.reason if self.by is not None and self.by.reason else self.item.status_reason


def probe_overrides(deployment: Deployment) -> list[ProbeOverride]:
    """The deployment's items a person decided against a failing probe, in checklist order.

    The verdict is the one signatures bind (`latest_results`: the latest finished run, an
    error there leaving the verdict before it in force; supporting probes left out). At most
    six queries, whatever the number of items: none past the first when no person decided a
    probed item complete."""
    candidates = list(
        ChecklistItem.objects.filter(
            section__deployment=deployment,
            source=DecisionSource.PERSON,
            status__in=COMPLETE_STATUSES,
        )
        .select_related("section", "owner_role", "updated_by")
        .order_by("section__position", "position")
    )
    if not candidates:
        return []
    probes = latest_results([deployment.pk]).get(deployment.pk, {})
    overridden = [
        item
        for item in candidates
        if item_verdict([entry["status"] for entry in probes.get(item.pk, [])]) == ItemStatus.FAILED
    ]
    if not overridden:
        return []
    evidence = drift_evidence({item.pk: probes[item.pk] for item in overridden})
    histories = item_histories([item.pk for item in overridden])
    failing_by_item: dict[int, list[dict]] = {}
    for (item_id, *_), entry in sorted(evidence.items()):
        if entry["status"] == ProbeOutcome.FAIL:
            failing_by_item.setdefault(item_id, []).append(entry)
    numbers = run_numbers(
        {entry["run_id"] for entries in failing_by_item.values() for entry in entries}
    )
    for entries in failing_by_item.values():
        for entry in entries:
            entry["run_number"] = numbers.get(entry["run_id"])
    return [
        ProbeOverride(
            item=item,
            by=setter_of(histories.get(item.pk, []), "status", item.status),
            failing=failing_by_item.get(item.pk, []),
        )
        for item in overridden
    ]


def waivers_in_force(waivers_by_item: dict[int, list[Waiver]], *, now: datetime) -> list[Waiver]:
    """The waivers of `waivers_by_item` (selectors.item_waivers) in force at `now`, in
    checklist order, then newest first."""
    return sorted(
        (
            waiver
            for waivers in waivers_by_item.values()
            for waiver in waivers
            if waiver.is_active(now)
        ),
        key=lambda waiver: (
            waiver.item.section.position,
            waiver.item.position,
            -waiver.granted_at.timestamp(),
        ),
    )
