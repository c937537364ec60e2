"""What each role approves and where it stands: the canonical state, its digest, the changes
since signing, the blockers. Shared by the role pages, the dashboard, services and the PDF.

A sign-off binds the SHA-256 of `canonical_state()`: the deployment's identity (with the AWS
accounts its probes read and their regions) and, per item the role owns, status, note,
evidence, n/a reason, active waiver and the verdict of each probe in each account and region.
A role that owns no items (Product) signs for the whole checklist's summary: every item's
status and whether it is waived. Changing anything in that serialization makes the sign-off
stale; changing anything outside it does not.

Probe verdicts, not their wording, are bound (since format 2): a daily re-probe that finds 13 log
groups where there were 12, all passing, is not a change of what was approved, while a pass
that turns into a failure is drift. A probe that errors (AWS unreachable, throttled, denied)
leaves the verdict before it in force: not knowing is not a change either.

What changed is said in words; a change to an item's own fields (status, note, evidence,
n/a reason) also names who made it, when and why (the reason asked for once sign-off was
requested), from the item's history.
"""

import functools
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet, Subquery
from django.utils import timezone
from django.utils.text import Truncator

from readiness.audit.models import AuditEvent
from readiness.checklists.models import (
    COMPLETE_STATUSES,
    AwsAccount,
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentState,
    ItemChange,
    ItemStatus,
)
from readiness.checklists.selectors import item_histories
from readiness.evidence.selectors import verdicts_newest_first
from readiness.people import NAME_FIELDS, display_name
from readiness.probe_runs.models import ACTIVE_RUN_STATES, ProbeOutcome, ProbeResult
from readiness.probe_runs.selectors import latest_finished_run_ids, run_numbers
from readiness.probes.base import registry
from readiness.sql import ModelColumns, column, model_columns
from signoff.signatures.models import Revocation, SignOff, Waiver
from signoff.teams.models import Role, RoleMembership

# 3: the identity holds the AWS accounts and their regions, a probe verdict its account. A
# signature of format 2 (one account, before accounts were bound) is compared with the state
# now written in format 2, so upgrading does not make every signature stale; a change of
# the accounts or a run over several still does (the probe verdicts differ).
CANONICAL_FORMAT = 3
LEGACY_FORMAT = 2
STATUS_WORDS = {
    ItemStatus.OPEN: "open",
    ItemStatus.DONE: "done",
    ItemStatus.NOT_APPLICABLE: "n/a",
    ItemStatus.FAILED: "failed",
}


def digest_of(state: dict) -> str:
    """SHA-256 of the state as sorted, compact UTF-8 JSON: the same state, the same digest."""
    encoded = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def deployment_identity(deployment: Deployment, accounts: list[dict] | None = None) -> dict:
    """Who the deployment is; with `accounts` (aws_targets()), the AWS accounts it spans."""
    identity = {
        "id": deployment.pk,
        "team": deployment.team.slug,
        "service": deployment.service,
        "environment": deployment.environment,
        "version": deployment.version,
        "template": f"{deployment.template.name} v{deployment.template.version}",
    }
    if accounts is not None:
        identity["aws_accounts"] = accounts
    return identity


def aws_targets(deployment_ids) -> dict[int, list[dict]]:
    """{deployment id: [{account_id, regions}] by account id}: the target a signature
    binds (the role and external id say how it is read, not what is approved)."""
    targets: dict[int, list[dict]] = {pk: [] for pk in deployment_ids}
    for deployment_id, account_id, regions in (
        AwsAccount.objects.filter(deployment_id__in=deployment_ids)
        .order_by("deployment_id", "account_id")
        .values_list("deployment_id", "account_id", "regions")
    ):
        targets[deployment_id].append(_bound_target(account_id, regions))
    return targets


def _bound_target(account_id: str, regions: list[str]) -> dict:
    return {"account_id": account_id, "regions": sorted(regions)}


def _waiver_state(waiver: Waiver | None) -> dict | None:
    if waiver is None:
        return None
    return {
        "id": waiver.pk,
        "reason": waiver.reason,
        "granted_by": display_name(waiver.granted_by),
        "expires_at": waiver.expires_at.isoformat(),
    }


def canonical_state(
    *,
    deployment: Deployment,
    role: Role,
    items: list,
    probes: dict,
    waivers: dict,
    evidence: dict | None = None,
    accounts: list[dict] | None = None,
    format: int = CANONICAL_FORMAT,
) -> dict:
    """What `role` approves on `deployment`, as plain JSON values (see the module docstring).

    `items` are the deployment's items with `section` loaded, `probes` {item id: [result
    dicts]}, `waivers` {item id: active Waiver}, `evidence` {item id: the newest CI
    evidence verdict as a dict} and `accounts` the deployment's aws_targets(). `format`:
    LEGACY_FORMAT, to compare with a signature made in it.
    """
    bound = BOUND_PROBE_FIELDS if format == CANONICAL_FORMAT else LEGACY_BOUND_PROBE_FIELDS
    evidence = evidence or {}
    # Each `pk` read once into a local: a model's pk is a property, and the standings of a
    # checklist page look at every item once per role.
    role_id = role.pk
    owned = [item for item in items if item.owner_role_id == role_id]
    entries = []
    if owned:
        for item in owned:
            pk = item.pk
            entries.append(
                {
                    "id": pk,
                    "section": item.section.title,
                    "title": item.title,
                    "status": item.status,
                    "note": item.note,
                    "evidence_url": item.evidence_url,
                    "na_reason": item.na_reason,
                    "waiver": _waiver_state(waivers.get(pk)),
                    "probes": [
                        {key: result[key] for key in bound} for result in probes.get(pk, [])
                    ],
                    "ci_evidence": evidence.get(pk),
                }
            )
        scope = "items"
    else:
        for item in items:
            pk = item.pk
            entries.append(
                {
                    "id": pk,
                    "section": item.section.title,
                    "title": item.title,
                    "status": item.status,
                    "waived": pk in waivers,
                }
            )
        scope = "summary"
    return {
        "format": format,
        "deployment": deployment_identity(
            deployment, (accounts or []) if format == CANONICAL_FORMAT else None
        ),
        "role": role.name,
        "scope": scope,
        "items": entries,
    }


def _word(status: str) -> str:
    return STATUS_WORDS.get(status, status)


# An item's own fields, as the change lines name them: a person (or a probe run, or CI
# evidence) changed them, and the item's history says who, when and why.
EDITED_FIELDS = (
    ("status", ""),
    ("note", "note"),
    ("evidence_url", "evidence"),
    ("na_reason", "n/a reason"),
)
# What an item holds before its first change.
INITIAL_VALUES = {"status": ItemStatus.OPEN, "note": "", "evidence_url": "", "na_reason": ""}


@dataclass(frozen=True)
class ChangeLine:
    """One thing that changed since a signature: what (`subject`, the item's title or a field
    of the deployment, and `detail`, from what to what) and, for an item's own fields, the
    change that made it so (`by`: who, when, why). `str()` is the line as the signoff.stale
    event, its mail and the record print it; pages link `subject` to the item's history."""

    subject: str
    detail: str
    item_id: int | None = None
    deployment_id: int | None = None
    by: ItemChange | None = None

    @property
    def attribution(self) -> str:
        return change_attribution(self.by) if self.by is not None else ""

    def __str__(self) -> str:
        attribution = self.attribution
        return f"{self.subject}: {self.detail}" + (f" — {attribution}" if attribution else "")


# How much of a note, link or reason a change line quotes: enough to recognise it; the
# item's history holds the whole text.
QUOTED_CHARS = 60


def quoted(value: str) -> str:
    """A field's value as a change line quotes it: whitespace collapsed, cut at QUOTED_CHARS,
    "(none)" for nothing."""
    value = " ".join((value or "").split())
    return f"“{Truncator(value).chars(QUOTED_CHARS)}”" if value else "(none)"


def state_changes(
    signed: dict,
    current: dict,
    evidence: dict | None = None,
    editors: Callable[[int, str, object], ItemChange | None] | None = None,
) -> list[ChangeLine]:
    """What changed between the state a role signed and the state now, one ChangeLine each.

    `evidence` ({(item id, account, probe, region): result dict of latest_results()}) dates
    a probe's drift and names what fails. `editors(item id, field, value now)` gives the change that
    gave an item's field its value now (ChangeHistory.setter), or None.
    """
    return [made(change) for change in pending_changes(signed, current, evidence, editors)]


def made(change: "ChangeLine | Callable[[], ChangeLine]") -> ChangeLine:
    """A change line of pending_changes, made."""
    return change if isinstance(change, ChangeLine) else change()


def pending_changes(
    signed: dict,
    current: dict,
    evidence: dict | None = None,
    editors: Callable[[int, str, object], ItemChange | None] | None = None,
) -> "list[ChangeLine | Callable[[], ChangeLine]]":
    """state_changes' lines, the same and in the same order, where a probe's is the call
    that words it (`made()` makes either): which lines there are is decided here, so that
    a page showing the first few and how many there are words only those (a re-probe of a
    signed checklist changes scores of results)."""
    evidence = evidence or {}
    deployment_id = current["deployment"].get("id")

    def by(item_id: int, key: str, value) -> ItemChange | None:
        return editors(item_id, key, value) if editors else None

    changes = []
    before_identity, after_identity = signed.get("deployment", {}), current["deployment"]
    for key in ("service", "environment", "version", "team", "template"):
        if before_identity.get(key) != after_identity.get(key):
            changes.append(
                ChangeLine(key, f"{before_identity.get(key)} → {after_identity.get(key)}")
            )
    if "aws_accounts" in after_identity:
        changes.extend(
            _account_changes(before_identity.get("aws_accounts"), after_identity["aws_accounts"])
        )
    before_items = {entry["id"]: entry for entry in signed.get("items", [])}
    after_items = {entry["id"]: entry for entry in current["items"]}
    # {item id: {(account, probe, region): result}}, made once when a probe changed: the
    # evidence holds every result of the standing's items.
    evidence_by_item: dict[int, dict] | None = None
    for item_id, after in after_items.items():
        before = before_items.get(item_id)
        if before == after:
            # Nothing below differs (most items, on most signatures): one comparison of
            # the entries rather than one per field.
            continue
        title = after["title"]
        line = partial(ChangeLine, title, item_id=item_id, deployment_id=deployment_id)
        if before is None:
            changes.append(line("now in scope"))
            continue
        if before.get("status") != after["status"]:
            changes.append(
                line(
                    f"{_word(before.get('status'))} → {_word(after['status'])}",
                    by=by(item_id, "status", after["status"]),
                )
            )
        if "ci_evidence" in after and before.get("ci_evidence") != after["ci_evidence"]:
            new = after["ci_evidence"] or {}
            verdict = "passing" if new.get("passed") else "failing"
            changes.append(line(f"new CI evidence ({new.get('kind')}, {verdict})"))
        for key, label in EDITED_FIELDS[1:]:
            if key in after and before.get(key) != after[key]:
                changes.append(
                    line(
                        f"{label} changed: {quoted(before.get(key))} → {quoted(after[key])}",
                        by=by(item_id, key, after[key]),
                    )
                )
        if "waiver" in after and before.get("waiver") != after["waiver"]:
            changes.append(line(_waiver_change(before.get("waiver"), after["waiver"])))
        if "waived" in after and before.get("waived") != after["waived"]:
            changes.append(line("waived" if after["waived"] else "waiver ended"))
        if "probes" in after and before.get("probes") != after["probes"]:
            if evidence_by_item is None:
                evidence_by_item = {}
                for key, value in evidence.items():
                    evidence_by_item.setdefault(key[0], {})[key[1:]] = value
            changes.extend(
                PendingProbeLine(line, change)
                for change in _probe_changes(
                    before.get("probes") or [],
                    after["probes"],
                    evidence_by_item.get(item_id, {}),
                )
            )
    for item_id, before in before_items.items():
        if item_id not in after_items:
            changes.append(ChangeLine(before["title"], "no longer in scope"))
    return changes


def _waiver_change(before: dict | None, after: dict | None) -> str:
    if after is None:
        return "waiver expired or withdrawn"
    granted = (
        f"by {after.get('granted_by')} until {after.get('expires_at', '')[:10]}:"
        f" {quoted(after.get('reason'))}"
    )
    if before is None:
        return f"waiver granted {granted}"
    return f"waiver changed: now {granted}"


def _account_changes(before: list | None, after: list) -> list[ChangeLine]:
    """The AWS target's changes: accounts added or removed, regions changed."""
    if before is None:
        return []
    old = {account["account_id"]: account["regions"] for account in before}
    new = {account["account_id"]: account["regions"] for account in after}
    changes = []
    for account_id in sorted(set(old) | set(new)):
        subject = f"AWS account {account_id}"
        if account_id not in old:
            changes.append(ChangeLine(subject, f"added ({', '.join(new[account_id])})"))
        elif account_id not in new:
            changes.append(ChangeLine(subject, "removed"))
        elif old[account_id] != new[account_id]:
            changes.append(
                ChangeLine(
                    subject,
                    f"regions {', '.join(old[account_id])} → {', '.join(new[account_id])}",
                )
            )
    return changes


@dataclass(slots=True)
class ProbeChange:
    """A probe result that changed (`key`: account, probe, region; `was`, `now`: the bound
    result at signing and now, None where there was none), worded when asked: `evidence`
    ({(account, probe, region): result entry}) dates a verdict's change and names what
    fails."""

    key: tuple
    was: dict | None
    now: dict | None
    several: bool  # the account is named where the results span several
    evidence: dict

    def seen(self) -> dict:
        """The evidence of the result now."""
        seen = self.evidence.get(self.key)
        if not seen and not self.key[0]:
            # A legacy (format 2) state names no account: its evidence is found by probe
            # and region (the last one, as a dict of them keeps).
            seen = {key[1:]: value for key, value in self.evidence.items()}.get(self.key[1:])
        return seen or {}

    def words(self) -> str:
        account, probe, region = self.key
        was, now = self.was, self.now
        where = f"{probe} [{account} {region}]" if self.several else f"{probe} [{region}]"
        if now is None:
            return f"probe {where} no longer reported"
        if was is not None and was["status"] == now["status"]:
            return f"probe {where} evidence changed"
        seen = self.seen()
        when = f" on {seen['checked_on']}" if seen.get("checked_on") else ""
        detail = seen.get("detail") or seen.get("summary") or ""
        detail = f": {detail}" if detail else ""
        if was is None:
            return f"probe {where} now {now['status']}{when}{detail}"
        return f"probe {where} {was['status']} at signing → {now['status']}{when}{detail}"


@dataclass(slots=True)
class PendingProbeLine:
    """A probe's change line of pending_changes, made (worded) when called."""

    line: Callable[..., ChangeLine]  # the ChangeLine of the item, less its detail
    change: ProbeChange

    def __call__(self) -> ChangeLine:
        return self.line(self.change.words())


def _probe_changes(before: list, after: list, evidence: dict) -> list[ProbeChange]:
    """The probe results that changed, in order (each ProbeChange words itself)."""

    def keyed(results):
        return {(r.get("account", ""), r["probe"], r["region"]): r for r in results}

    old, new = keyed(before), keyed(after)
    keys = set(old) | set(new)
    # The account is named where the results span several.
    several = len({key[0] for key in keys}) > 1
    changes = []
    for key in sorted(keys):
        was, now = old.get(key), new.get(key)
        if was is None or now is None or was != now:
            changes.append(ProbeChange(key, was, now, several, evidence))
    return changes


def edited_item_ids(signed: dict, current: dict) -> set[int]:
    """The items whose own fields (EDITED_FIELDS) differ between a signed state and now."""
    before = {entry["id"]: entry for entry in signed.get("items", [])}
    return {
        entry["id"]
        for entry in current["items"]
        if entry["id"] in before
        and any(
            key in entry and before[entry["id"]].get(key) != entry[key] for key, _ in EDITED_FIELDS
        )
    }


def setter_of(history: list[ItemChange], key: str, value) -> ItemChange | None:
    """The change that gave the item's `key` its `value` now: the first of the newest run of
    changes holding it (`history` oldest first). None where the history does not say (the
    row was written around the service, or the item started with that value)."""
    setter = None
    for change in reversed(history):
        if getattr(change, key) != value:
            return setter
        setter = change
    return setter if value != INITIAL_VALUES[key] else None


def change_attribution(change: ItemChange) -> str:
    """Who made a change, when (UTC) and why, as change lines, stale notices and the
    signoff.stale audit event print it."""
    person = display_name(change.changed_by) if change.changed_by else ""
    if change.source == DecisionSource.PROBE:
        number = getattr(change, "probe_run_number", None)
        who = f"probe run {number} of this deployment" if number else "a probe run"
    elif change.source == DecisionSource.EVIDENCE:
        who = f"CI evidence uploaded by {person}" if person else "CI evidence"
    else:
        who = person or "someone"
    when = change.changed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    reason = " ".join(change.reason.split())
    return f"{who}, {when}" + (f": “{reason}”" if reason else "")


def _number_probe_runs(histories: dict[int, list[ItemChange]]) -> None:
    """Name each probe-run change's run by the deployment's own numbering (one query, only
    when a probe run made one of the changes)."""
    changes = [c for history in histories.values() for c in history if c.probe_run_id]
    if changes:
        numbers = run_numbers({change.probe_run_id for change in changes})
        for change in changes:
            change.probe_run_number = numbers.get(change.probe_run_id)


class ChangeHistory:
    """Who made each changed item field what it is now, for the standings of one
    `standings()` call: the histories of every stale standing's edited items are read in one
    query, when the first stale standing's changes are read (never for fresh ones)."""

    def __init__(self, standings_list: list | None = None) -> None:
        self.standings: list[RoleStanding] = list(standings_list or [])
        self._histories: dict[int, list[ItemChange]] = {}
        self._loaded: set[int] | None = None
        self._signed_states_read = False

    def read_signed_states(self) -> None:
        """What the stale signatures approved, in one query for all the standings, where
        `standings(rows=True)` left it unread (a list page reads it only when it shows
        change lines)."""
        if not self._signed_states_read:
            self._signed_states_read = True
            _read_stale_signed_states(self.standings)

    def _history(self, item_id: int) -> list[ItemChange]:
        if self._loaded is None or item_id not in self._loaded:
            wanted = {item_id} | (self._loaded or set())
            for standing in self.standings:
                if standing.active is not None and not standing.fresh:
                    wanted |= edited_item_ids(standing.active.approved_state, standing.state)
            self._histories = item_histories(wanted)
            _number_probe_runs(self._histories)
            self._loaded = wanted
        return self._histories.get(item_id, [])

    def setter(self, item_id: int, key: str, value) -> ItemChange | None:
        """The change that gave the item's `key` its `value` now, or None where the history
        does not say."""
        return setter_of(self._history(item_id), key, value)

    def attribution(self, item_id: int, key: str, value) -> str:
        """The suffix naming who gave the item's `key` its `value` now, when and why
        (" — Sam Doe, 2025-03-01 14:02 UTC: “…”"), or "" where the history does not say."""
        change = self.setter(item_id, key, value)
        return f" — {change_attribution(change)}" if change else ""


@dataclass(frozen=True)
class Blocker:
    item: ChecklistItem
    waiver: Waiver | None

    @property
    def status_word(self) -> str:
        return _word(self.item.status)


@dataclass
class RoleStanding:
    """One role on one deployment: its signatures, the state now, and whether it holds."""

    role: Role
    state: dict
    digest: str
    items: list
    blockers: list[Blocker]
    waived: list[Blocker]
    signoffs: list[SignOff] = field(default_factory=list)

    @property
    def current(self) -> SignOff | None:
        """The latest signature of the role, revoked or not."""
        return self.signoffs[-1] if self.signoffs else None

    @property
    def active(self) -> SignOff | None:
        """The latest signature unless it was revoked."""
        current = self.current
        if current is None or getattr(current, "revoked", None):
            return None
        return current

    @property
    def fresh(self) -> bool:
        return self.active is not None and self.active.digest in (self.digest, self.legacy_digest)

    @property
    def approving(self) -> bool:
        return self.fresh and self.active.is_approval

    @property
    def status(self) -> str:
        """missing, revoked, stale, or the meaning of a fresh signature."""
        if self.current is None:
            return "missing"
        if self.active is None:
            return "revoked"
        if not self.fresh:
            return "stale"
        return self.active.meaning

    @property
    def status_label(self) -> str:
        if self.status in ("missing", "revoked", "stale"):
            return {"missing": "not signed", "revoked": "revoked", "stale": "stale"}[self.status]
        return self.active.get_meaning_display()

    evidence: dict = field(default_factory=dict)
    # Shared by the standings of one standings() call, so that their change lines read the
    # items' histories once.
    history: ChangeHistory | None = None
    # The state now in LEGACY_FORMAT, for an active signature made in it (a callable: only
    # an active signature that differs from the current format needs it), and its digest
    # when that signature still holds in its format.
    legacy_state: Callable[[], dict] | None = None
    legacy_digest: str = ""

    @property
    def change_lines(self) -> list[ChangeLine]:
        """What changed since the active signature: an item's own fields say from what to
        what, who changed them, when and why."""
        if self.active is None or self.fresh:
            return []
        if not hasattr(self, "_changes"):
            self._read_changes(drift_evidence(self.evidence))
        return self._changes

    @property
    def changes(self) -> list[str]:
        """The change lines in words, as the signoff.stale event and its mail hold them."""
        return [str(line) for line in self.change_lines]

    @property
    def change_count(self) -> int:
        """len(change_lines), without making every line where read_changes(first=) read
        only the first ones."""
        if hasattr(self, "_first_changes"):
            return self._change_count
        return len(self.change_lines)

    def first_change_lines(self, count: int) -> list[ChangeLine]:
        """change_lines[:count], made alone where read_changes(first=count or more) read
        them."""
        first = getattr(self, "_first_changes", None)
        if first is not None and count <= self._first_count:
            return first[:count]
        return self.change_lines[:count]

    def _pending_changes(self, drift: dict[tuple, dict]) -> list:
        history = self.history or ChangeHistory([self])
        history.read_signed_states()
        current = self.state
        if self.active.approved_state.get("format") == LEGACY_FORMAT and self.legacy_state:
            current = self.legacy_state()
        return pending_changes(self.active.approved_state, current, drift, editors=history.setter)

    def _read_changes(self, drift: dict[tuple, dict]) -> None:
        self._changes = [made(change) for change in self._pending_changes(drift)]

    def _read_first_changes(self, pending: list, first: int) -> None:
        self._change_count = len(pending)
        self._first_count = first
        self._first_changes = [made(change) for change in pending[:first]]

    @property
    def summary_scope(self) -> bool:
        return self.state["scope"] == "summary"


def required_roles(deployment: Deployment, roles: list[Role]) -> list[Role]:
    """The roles of the template's Final Sign-Off table that exist here, in their order."""
    wanted = list(deployment.template.sign_off_roles or [])
    by_name = {role.name: role for role in roles}
    chosen = [by_name[name] for name in wanted if name in by_name]
    return chosen or list(roles)


def latest_results(deployment_ids) -> dict[int, dict[int, list[dict]]]:
    """{deployment id: {item id: [result dicts]}}: each probe, account and region of the
    deployment's latest finished run, with the newest verdict it has.

    Where that run's result is an error, the newest earlier verdict for the same item, probe,
    account and region stands in (marked `carried`, with the error kept as `error`): an outage of
    AWS or of the worker says nothing about the resources, so it must not change what a
    signature covers.
    """
    run_ids = latest_finished_run_ids(deployment_ids)
    # Supporting evidence (probe.supporting) is shown with an item but proves nothing about
    # it, so it is not part of what a signature covers.
    supporting = [key for key, probe in registry().items() if probe.supporting]
    rows = (
        ProbeResult.objects.filter(run_id__in=Subquery(run_ids), item__isnull=False)
        .exclude(status="")
        .exclude(probe_key__in=supporting)
        .order_by("probe_key", "account_id", "region")
        .values(*RESULT_FIELDS)
    )
    return bound_results(rows)


def bound_results(rows) -> dict[int, dict[int, list[dict]]]:
    """latest_results() of result rows already read (RESULT_FIELDS, ordered by probe, account
    and region; all of one run per deployment, the latest finished): the rows of no item,
    unfinished or of a supporting probe are left out here."""
    supporting = {key for key, probe in registry().items() if probe.supporting}
    rows = [
        row
        for row in rows
        if row["item_id"] is not None and row["status"] and row["probe_key"] not in supporting
    ]
    errors = [row for row in rows if row["status"] == ProbeOutcome.ERROR]
    earlier = _verdicts_before(errors) if errors else {}
    grouped: dict[int, dict[int, list[dict]]] = {}
    for row in rows:
        key = (row["item_id"], row["account_id"], row["probe_key"], row["region"])
        entry = _result_entry(row)
        if row["status"] == ProbeOutcome.ERROR and key in earlier:
            entry = {**_result_entry(earlier[key]), "carried": True, "error": row["summary"]}
        grouped.setdefault(row["run__deployment_id"], {}).setdefault(row["item_id"], []).append(
            entry
        )
    return grouped


RESULT_FIELDS = (
    "pk",
    "run_id",
    "run__deployment_id",
    "item_id",
    "account_id",
    "probe_key",
    "region",
    "status",
    "summary",
    "finished_at",
)
# What of a probe result a signature binds; the rest is evidence shown beside it.
BOUND_PROBE_FIELDS = ("account", "probe", "region", "status")
LEGACY_BOUND_PROBE_FIELDS = ("probe", "region", "status")


def _result_entry(row: dict) -> dict:
    finished = row["finished_at"]
    return {
        "account": row["account_id"],
        "probe": row["probe_key"],
        "region": row["region"],
        "status": row["status"],
        "summary": row["summary"],
        "result_id": row["pk"],
        "run_id": row["run_id"],
        "checked_on": finished.astimezone(UTC).date().isoformat() if finished else "",
        "carried": False,
    }


def _verdicts_before(errors: list[dict]) -> dict[tuple, dict]:
    """The newest non-error result of earlier finished runs for each erroring probe, in the
    same account and region: one account's outage never borrows another's verdict."""
    rows = (
        ProbeResult.objects.filter(
            run__deployment_id__in={row["run__deployment_id"] for row in errors},
            item_id__in={row["item_id"] for row in errors},
            probe_key__in={row["probe_key"] for row in errors},
            run_id__lt=max(row["run_id"] for row in errors),
        )
        .exclude(run__state__in=ACTIVE_RUN_STATES)
        .exclude(status__in=["", ProbeOutcome.ERROR])
        .order_by("-run_id")
        .values(*RESULT_FIELDS)
    )
    wanted = {
        (row["item_id"], row["account_id"], row["probe_key"], row["region"]): row["run_id"]
        for row in errors
    }
    found: dict[tuple, dict] = {}
    for row in rows.iterator():
        key = (row["item_id"], row["account_id"], row["probe_key"], row["region"])
        if key in wanted and key not in found and row["run_id"] < wanted[key]:
            found[key] = row
            if len(found) == len(wanted):
                break
    return found


def read_changes(stale: list[RoleStanding], *, first: int | None = None) -> None:
    """Read the change lines of many stale standings (of any deployments) at once: one read
    of the failing results' findings for all of them, where `RoleStanding.changes` alone
    reads them once per standing (My sign-offs lists a page of them). `first`: make only
    that many lines of each (first_change_lines) and count the rest (change_count), for a
    page that shows no more; change_lines still makes them all when asked."""
    stale = [standing for standing in stale if standing.active is not None]
    if not stale:
        return
    evidence: dict[int, list[dict]] = {}
    for standing in stale:
        evidence.update(standing.evidence)  # item ids are unique across deployments
    if first is None:
        drift = drift_evidence(evidence)
        for standing in stale:
            standing._read_changes(drift)
        return
    # The findings of the failing results that the lines made quote, only: the lines are
    # worded once all are counted (pending_changes), after the details they need are read.
    drift, failing = _drift_entries(evidence)
    pending = {id(standing): standing._pending_changes(drift) for standing in stale}
    needed = {}
    for changes in pending.values():
        for change in changes[:first]:
            if isinstance(change, PendingProbeLine):
                result_id = change.change.seen().get("result_id")
                if result_id in failing:
                    needed[result_id] = failing[result_id]
    _read_details(needed)
    for standing in stale:
        standing._read_first_changes(pending[id(standing)], first)


def drift_evidence(evidence: dict[int, list[dict]]) -> dict[tuple, dict]:
    """{(item id, account, probe, region): result entry}, with `detail` naming the first
    failing resource of each failing result (one query, for a stale standing only)."""
    flat, failing = _drift_entries(evidence)
    _read_details(failing)
    return flat


def _drift_entries(evidence: dict[int, list[dict]]) -> tuple[dict[tuple, dict], dict[int, dict]]:
    """drift_evidence's entries before their details are read, and the failing ones by
    result id: copies, which get their `detail` (the standings' own entries stay as they
    are)."""
    flat = {
        (item_id, entry["account"], entry["probe"], entry["region"]): entry
        for item_id, entries in evidence.items()
        for entry in entries
    }
    failing = {}
    for key, entry in flat.items():
        if entry["status"] == ProbeOutcome.FAIL and entry.get("result_id"):
            flat[key] = failing[entry["result_id"]] = dict(entry)
    return flat, failing


def _read_details(failing: dict[int, dict]) -> None:
    """Set the `detail` of failing results' entries {result id: entry}: the first failing
    resource their findings name (one query)."""
    if failing:
        findings_column = _findings_columns()
        with connection.cursor() as cursor:
            cursor.execute(_findings_sql(len(failing)), list(failing))
            rows = cursor.fetchall()
        for row in rows:
            pk, findings = findings_column.values(row)
            first = next((f for f in findings or [] if f.get("status") == ProbeOutcome.FAIL), None)
            if first:
                failing[pk]["detail"] = f"{first.get('id')}: {first.get('reason')}".strip(": ")


@functools.cache
def _findings_columns() -> ModelColumns:
    return model_columns(ProbeResult, ("findings",))


@functools.cache
def _findings_sql(count: int) -> str:
    """The findings of `count` results by id. Written in SQL: built through the ORM, the
    statement cost more CPU to compile than to run, on every page showing a stale signature.
    (No ORDER BY: read into a dict.)"""
    meta = ProbeResult._meta
    return (
        f"SELECT {_findings_columns().select('p')}"
        f" FROM {connection.ops.quote_name(meta.db_table)} p"
        f" WHERE p.{connection.ops.quote_name(meta.pk.column)} IN ({', '.join(['%s'] * count)})"
    )


def latest_evidence(deployment_ids) -> dict[int, dict]:
    """{item id: the newest CI evidence verdict, as the signature binds it}: the file's
    SHA-256, its kind and what it said (only those columns: standings run on every edit)."""
    latest: dict[int, dict] = {}
    for row in verdicts_newest_first(deployment_ids).values(
        "item_id", "evidence__sha256", "evidence__kind", "passed"
    ):
        latest.setdefault(
            row["item_id"],
            _bound_evidence(row["evidence__sha256"], row["evidence__kind"], row["passed"]),
        )
    return latest


def _bound_evidence(sha256: str, kind: str, passed: bool) -> dict:
    return {"sha256": sha256, "kind": kind, "passed": passed}


@dataclass(frozen=True)
class DeploymentReads:
    """What a page already read of one deployment that its standings bind too, so that
    `standings(..., reads=)` does not read it again: its items in checklist order (model
    instances with their section), the waivers in force by item id (active_waivers) and
    the newest CI evidence verdict by item id (evidence.selectors.latest_verdicts) and its
    AWS accounts (AwsAccount); when it read them, every Role in order (`roles`) and its
    latest finished run's results as latest_results() gives one deployment's (`probes`,
    bound_results(); {} when it has no finished run)."""

    items: list[ChecklistItem]
    waivers: dict[int, Waiver]
    verdicts: dict
    accounts: list
    roles: list[Role] | None = None
    probes: dict[int, list[dict]] | None = None

    def targets(self) -> list[dict]:
        """As aws_targets reads them."""
        ordered = sorted(self.accounts, key=lambda account: account.account_id)
        return [_bound_target(account.account_id, account.regions) for account in ordered]

    def evidence(self) -> dict[int, dict]:
        """As latest_evidence reads it."""
        return {
            item_id: _bound_evidence(verdict.evidence.sha256, verdict.evidence.kind, verdict.passed)
            for item_id, verdict in self.verdicts.items()
        }


def active_waivers(
    deployment_ids, *, now: datetime, item_ids: Collection[int] | None = None
) -> dict[int, Waiver]:
    """{item id: the newest waiver in force} over the given deployments (only those items'
    with `item_ids`). Each waiver's `granted_by` is its user's names only (NAME_FIELDS; the
    rest of the row deferred): what pages, states and records print of who granted it.

    Written in SQL: built through the ORM, the statement cost more CPU to compile than to
    run, on every checklist page and every save of an item."""
    by_item = item_ids is not None
    keys = list(item_ids if by_item else deployment_ids)
    if not keys:
        return {}
    waivers, users = _waiver_columns()
    with connection.cursor() as cursor:
        cursor.execute(
            _active_waivers_sql(by_item, len(keys)),
            [connection.ops.adapt_datetimefield_value(now), *keys],
        )
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        waiver = waivers.instance(row[: waivers.width])
        waiver.granted_by = users.instance(row[waivers.width :])
        found[waiver.item_id] = waiver  # ordered by grant: the newest one stays
    return found


@functools.cache
def _waiver_columns() -> tuple[ModelColumns, ModelColumns]:
    return model_columns(Waiver), model_columns(get_user_model(), NAME_FIELDS)


@functools.cache
def _active_waivers_sql(by_item: bool, count: int) -> str:
    quote = connection.ops.quote_name
    waivers, users = _waiver_columns()
    meta, user_meta = Waiver._meta, get_user_model()._meta
    items, sections = ChecklistItem._meta, ChecklistItem.section.field.related_model._meta
    keys = ", ".join(["%s"] * count)
    if by_item:
        joins, where = "", f"w.{column(meta, 'item')} IN ({keys})"
    else:
        joins = (
            f" INNER JOIN {quote(items.db_table)} i"
            f" ON i.{quote(items.pk.column)} = w.{column(meta, 'item')}"
            f" INNER JOIN {quote(sections.db_table)} s"
            f" ON s.{quote(sections.pk.column)} = i.{column(items, 'section')}"
        )
        where = f"s.{column(sections, 'deployment')} IN ({keys})"
    return (
        f"SELECT {waivers.select('w')}, {users.select('u')} FROM {quote(meta.db_table)} w"
        f" INNER JOIN {quote(user_meta.db_table)} u"
        f" ON u.{quote(user_meta.pk.column)} = w.{column(meta, 'granted_by')}{joins}"
        f" WHERE w.{column(meta, 'withdrawn_at')} IS NULL AND w.{column(meta, 'expires_at')} > %s"
        f" AND {where}"
        f" ORDER BY w.{column(meta, 'item')}, w.{column(meta, 'granted_at')}"
    )


@dataclass(frozen=True)
class SectionRow:
    title: str
    deployment_id: int


@dataclass(frozen=True)
class ItemRow:
    """What a signature binds of an item (see canonical_state), without a model instance."""

    pk: int
    section: SectionRow
    title: str
    status: str
    note: str
    evidence_url: str
    na_reason: str
    owner_role_id: int | None


ITEM_ROW_FIELDS = (
    "pk",
    "section__title",
    "section__deployment_id",
    "title",
    "status",
    "note",
    "evidence_url",
    "na_reason",
    "owner_role_id",
)


def _item_instances(items: QuerySet[ChecklistItem]) -> dict[int, list]:
    by_deployment: dict[int, list] = {}
    for item in items.select_related("section", "updated_by"):
        by_deployment.setdefault(item.section.deployment_id, []).append(item)
    return by_deployment


def _item_rows(items: QuerySet[ChecklistItem]) -> dict[int, list]:
    by_deployment: dict[int, list] = {}
    sections: dict[tuple[str, int], SectionRow] = {}
    for pk, title_of_section, deployment_id, *fields in items.values_list(*ITEM_ROW_FIELDS):
        key = (title_of_section, deployment_id)
        section = sections.get(key) or sections.setdefault(key, SectionRow(*key))
        by_deployment.setdefault(deployment_id, []).append(ItemRow(pk, section, *fields))
    return by_deployment


def standings(
    deployments: list[Deployment],
    *,
    now: datetime | None = None,
    role_ids: Collection[int] | None = None,
    owners_only: bool = False,
    rows: bool = False,
    signed_only: bool = False,
    reads: DeploymentReads | None = None,
    stale_recorded: bool = False,
    roles: list[Role] | None = None,
) -> dict:
    """{deployment id: [RoleStanding per required role]} in a fixed number of queries.

    `deployments` need `team` and `template` loaded (the visible-deployments selector does).
    `role_ids` keeps only those required roles. `owners_only` reads only the items those
    roles own: right only when each of them owns an item here (its scope is then its own
    items), which is what lets an item edit re-read a quarter of the checklist. `rows` gives
    the standings' items (and blockers' items) as ItemRow, the bound fields only: the same
    states and digests, for list pages that show a page of deployments' standings and never
    an item's other fields (building 1,400 model instances was most of their time); their
    signatures carry no `user`, and what the stale ones approved is read, in one query, when
    the first change line is. `signed_only` computes the state of a role only where its
    latest signature is in force (whether it is fresh needs the digest); the other standings
    say not signed or revoked, with no state, digest, items or blockers, and a deployment
    with no signature in force reads no item (the dashboard's badges). `reads`: what the
    caller read of the one deployment given (the checklist page), read once, not twice.
    `stale_recorded` sets `stale_recorded` on each signature: whether its signoff.stale
    event is in the audit trail (asked in the statement that reads the signatures; a
    re-evaluation records each stale signature once). `roles`: the roles to look at, where
    the caller knows them to be required here (read with what it read), with `role_ids`
    naming them all; otherwise every role is read to find the required ones.
    """
    now = now or timezone.now()
    ids = [deployment.pk for deployment in deployments]
    if not ids:
        return {}
    if roles is None:
        roles = reads.roles if reads is not None and reads.roles is not None else all_roles()
    elif role_ids is None or {role.pk for role in roles} != set(role_ids):
        raise ValueError("roles= are the roles of role_ids, all of them")
    signoffs = _signoffs_by_role(
        ids, roles, rows=rows, stale_recorded=stale_recorded, role_ids=role_ids
    )
    in_force = {key for key, signed in signoffs.items() if not signed[-1].revoked}
    if signed_only:
        ids = [pk for pk in ids if any((pk, role.pk) in in_force for role in roles)]
    items_by_deployment: dict[int, list] = {}
    probes: dict[int, dict] = {}
    evidence: dict[int, dict] = {}
    waivers: dict[int, Waiver] = {}
    accounts: dict[int, list[dict]] = {}
    if ids and reads is not None:
        if len(ids) != 1 or owners_only or rows:
            raise ValueError("reads= is what was read of one deployment, all its items")
        items_by_deployment = {ids[0]: reads.items}
        evidence = reads.evidence()
        waivers = reads.waivers
        accounts = {ids[0]: reads.targets()}
    elif ids:
        items = ChecklistItem.objects.filter(section__deployment_id__in=ids)
        if owners_only:
            items = items.filter(owner_role_id__in=role_ids or ())
        items = items.order_by("section__position", "position")
        items_by_deployment = _item_rows(items) if rows else _item_instances(items)
        evidence = latest_evidence(ids)
        waivers = active_waivers(ids, now=now)
        accounts = aws_targets(ids)
    if ids and reads is not None and reads.probes is not None:
        probes = {ids[0]: reads.probes}
    elif ids:
        probes = latest_results(ids)
    result = {}
    history = ChangeHistory()
    for deployment in deployments:
        items = items_by_deployment.get(deployment.pk, [])
        deployment_probes = probes.get(deployment.pk, {})
        result[deployment.pk] = [
            _standing(
                deployment,
                role,
                items,
                deployment_probes,
                waivers,
                signoffs,
                evidence,
                history,
                accounts=accounts.get(deployment.pk, []),
            )
            if not signed_only or (deployment.pk, role.pk) in in_force
            else RoleStanding(
                role=role,
                state={},
                digest="",
                items=[],
                blockers=[],
                waived=[],
                signoffs=signoffs.get((deployment.pk, role.pk), []),
            )
            for role in required_roles(deployment, roles)
            if role_ids is None or role.pk in role_ids
        ]
        history.standings += result[deployment.pk]
    return result


def _signoffs_by_role(
    ids, roles: list[Role], *, rows: bool, stale_recorded: bool = False, role_ids=None
) -> dict[tuple[int, int], list]:
    """{(deployment id, role id): its signatures, oldest first, each with `revoked` (its
    Revocation, or None)} (only the roles of `role_ids` with them). Each signature's `role`
    is one of `roles`; its signer (`user`, but with `rows`) and its revoker are their names
    only (NAME_FIELDS), what the pages, records and events print of them.

    With `rows`, a list page shows who signed, how and when, not what they approved: the
    signed states (a JSON document each) are left unread (deferred), read for the stale
    signatures only, and only when their change lines are (ChangeHistory.read_signed_states).

    Written in SQL: built through the ORM (three joins of whole rows), the statement cost
    more CPU to compile and its rows to make into instances than to run, on every checklist
    page and every read of standings."""
    ids = list(ids)
    role_keys = None if role_ids is None else list(role_ids)
    if not ids or role_keys == []:
        return {}
    signoff_columns, revocation_columns, users = _signoff_columns(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            _signoffs_sql(
                rows, stale_recorded, len(ids), None if role_keys is None else len(role_keys)
            ),
            [*ids, *(role_keys or ())],
        )
        found = cursor.fetchall()
    roles_by_pk = {role.pk: role for role in roles}
    revocation_cache = SignOff.revocation.related
    signoffs: dict[tuple[int, int], list[SignOff]] = {}
    for row in found:
        at = signoff_columns.width
        signoff = signoff_columns.instance(row[:at])
        if not rows:
            signoff.user = users.instance(row[at : at + users.width])
            at += users.width
        role = roles_by_pk.get(signoff.role_id)
        signoff.role = role if role is not None else Role.objects.get(pk=signoff.role_id)
        revocation = None
        if row[at] is not None:  # the revocation's id: NULL where none was joined
            revocation = revocation_columns.instance(row[at : at + revocation_columns.width])
            at += revocation_columns.width
            revocation.revoked_by = users.instance(row[at : at + users.width])
        else:
            at += revocation_columns.width
        at += users.width
        # As select_related leaves it: asking for the revocation reads nothing more.
        revocation_cache.set_cached_value(signoff, revocation)
        if stale_recorded:
            signoff.stale_recorded = bool(row[at])  # SQLite answers 0 or 1
        signoff.revoked = revocation
        signoffs.setdefault((signoff.deployment_id, signoff.role_id), []).append(signoff)
    return signoffs


@functools.cache
def _signoff_columns(rows: bool) -> tuple[ModelColumns, ModelColumns, ModelColumns]:
    """The signatures' columns (all but what they approved, with `rows`), their
    revocations', and their people's names."""
    signed = tuple(
        field.name
        for field in SignOff._meta.concrete_fields
        if not (rows and field.name == "approved_state")
    )
    return (
        model_columns(SignOff, signed),
        model_columns(Revocation),
        model_columns(get_user_model(), NAME_FIELDS),
    )


@functools.cache
def _signoffs_sql(rows: bool, stale_recorded: bool, count: int, role_count: int | None) -> str:
    """Signatures of `count` deployments (of `role_count` roles), by deployment, role
    position and sequence: the signature, its signer's names (but with `rows`), its
    revocation and its revoker's names (NULLs where it has none), and whether its
    signoff.stale event is in the trail (`stale_recorded`)."""
    quote = connection.ops.quote_name
    signoffs, revocations, users = _signoff_columns(rows)
    meta, revoked, roles = SignOff._meta, Revocation._meta, Role._meta
    user_meta, events = get_user_model()._meta, AuditEvent._meta
    user_table, user_pk = quote(user_meta.db_table), quote(user_meta.pk.column)
    signer = "" if rows else f", {users.select('u')}"
    signer_join = (
        "" if rows else f" INNER JOIN {user_table} u ON u.{user_pk} = s.{column(meta, 'user')}"
    )
    recorded = (
        f", EXISTS(SELECT 1 FROM {quote(events.db_table)} e"
        f" WHERE e.{column(events, 'object_type')} = 'signoff.signoff'"
        f" AND e.{column(events, 'object_id')} = CAST(s.{quote(meta.pk.column)} AS VARCHAR)"
        f" AND e.{column(events, 'action')} = 'signoff.stale')"
        if stale_recorded
        else ""
    )
    of_roles = (
        ""
        if role_count is None
        else f" AND s.{column(meta, 'role')} IN ({', '.join(['%s'] * role_count)})"
    )
    return (
        f"SELECT {signoffs.select('s')}{signer}, {revocations.select('r')},"
        f" {users.select('ru')}{recorded}"
        f" FROM {quote(meta.db_table)} s"
        f" INNER JOIN {quote(roles.db_table)} ro"
        f" ON ro.{quote(roles.pk.column)} = s.{column(meta, 'role')}{signer_join}"
        f" LEFT OUTER JOIN {quote(revoked.db_table)} r"
        f" ON r.{column(revoked, 'signoff')} = s.{quote(meta.pk.column)}"
        f" LEFT OUTER JOIN {user_table} ru ON ru.{user_pk} = r.{column(revoked, 'revoked_by')}"
        f" WHERE s.{column(meta, 'deployment')} IN ({', '.join(['%s'] * count)}){of_roles}"
        f" ORDER BY s.{column(meta, 'deployment')}, ro.{column(roles, 'position')},"
        f" s.{column(meta, 'sequence')}"
    )


def _read_stale_signed_states(standing_list: list[RoleStanding]) -> None:
    """Load what the stale active signatures approved (their change lines diff it), in one
    query, where `standings(rows=True)` deferred it."""
    stale = {
        standing.active.pk: standing.active
        for standing in standing_list
        if standing.active is not None
        and not standing.fresh
        and "approved_state" in standing.active.get_deferred_fields()
    }
    if stale:
        for pk, state in SignOff.objects.filter(pk__in=stale).values_list("pk", "approved_state"):
            stale[pk].approved_state = state


def _standing(
    deployment, role, items, probes, waivers, signoffs, evidence, history=None, *, accounts
) -> RoleStanding:
    def state_in(format: int) -> dict:
        return canonical_state(
            deployment=deployment,
            role=role,
            items=items,
            probes=probes,
            waivers=waivers,
            evidence=evidence,
            accounts=accounts,
            format=format,
        )

    state = state_in(CANONICAL_FORMAT)
    digest = digest_of(state)
    role_signoffs = signoffs.get((deployment.pk, role.pk), [])
    legacy_digest = ""
    latest = role_signoffs[-1] if role_signoffs else None
    if (
        latest is not None
        and not latest.revoked
        and latest.digest != digest
        and _may_be_legacy(latest)
    ):
        # Maybe signed in the legacy format (its digest says so without reading what it
        # approved, which list pages leave unread): does it still hold in that format?
        legacy = digest_of(state_in(LEGACY_FORMAT))
        legacy_digest = legacy if legacy == latest.digest else ""
    # The items in the state, in its order (canonical_state's scope: those the role owns,
    # else all), without asking each item its pk again.
    if state["scope"] == "items":
        role_id = role.pk
        scoped = [item for item in items if item.owner_role_id == role_id]
    else:
        scoped = list(items)
    incomplete = [
        Blocker(item=item, waiver=waivers.get(item.pk))
        for item in scoped
        if item.status not in COMPLETE_STATUSES
    ]
    scope_ids = [entry["id"] for entry in state["items"]]
    return RoleStanding(
        role=role,
        state=state,
        digest=digest,
        items=scoped,
        blockers=[b for b in incomplete if b.waiver is None],
        waived=[b for b in incomplete if b.waiver is not None],
        signoffs=role_signoffs,
        evidence={pk: probes[pk] for pk in scope_ids if pk in probes},
        history=history,
        legacy_state=lambda: state_in(LEGACY_FORMAT),
        legacy_digest=legacy_digest,
    )


def _may_be_legacy(signoff: SignOff) -> bool:
    """Whether a signature could have been made in LEGACY_FORMAT: where what it approved is
    read, its format says (an edit of a signed deployment, stale after the first change,
    would otherwise compute the state twice on every save)."""
    if "approved_state" in signoff.get_deferred_fields():
        return True
    return signoff.approved_state.get("format") == LEGACY_FORMAT


def standing_of(deployment: Deployment, role: Role) -> RoleStanding:
    for standing in standings([deployment])[deployment.pk]:
        if standing.role.pk == role.pk:
            return standing
    raise Role.DoesNotExist(f"{role} does not sign for {deployment}.")


def all_approving(standing_list: list[RoleStanding]) -> bool:
    return bool(standing_list) and all(standing.approving for standing in standing_list)


def all_roles() -> list[Role]:
    """Every role, in the order the sign-off tables list them (Role's ordering). Written in
    SQL: the ORM's statement cost the checklist page more CPU to build and compile than the
    database took to answer it."""
    roles = model_columns(Role)
    with connection.cursor() as cursor:
        cursor.execute(_all_roles_sql())
        return [roles.instance(row) for row in cursor.fetchall()]


@functools.cache
def _all_roles_sql() -> str:
    meta = Role._meta
    order = ", ".join(f"r.{column(meta, name)}" for name in meta.ordering)
    return (
        f"SELECT {model_columns(Role).select('r')}"
        f" FROM {connection.ops.quote_name(meta.db_table)} r ORDER BY {order}"
    )


def roles_of(*, user, team) -> set[int]:
    """Ids of the roles `user` holds in `team`."""
    if not user.is_authenticated:
        return set()
    return set(
        RoleMembership.objects.filter(user=user, team=team).values_list("role_id", flat=True)
    )


def waiting_for(user) -> list[tuple[Deployment, RoleStanding]]:
    """Everything waiting for the user's signature: deployments in review (or approved but
    now stale) of their teams where a role they hold has no fresh signature."""
    memberships = RoleMembership.objects.filter(user=user).values_list("team_id", "role_id")
    held: dict[int, set[int]] = {}
    for team_id, role_id in memberships:
        held.setdefault(team_id, set()).add(role_id)
    if not held:
        return []
    deployments = list(
        Deployment.objects.filter(
            team_id__in=held,
            team__members=user,
            state__in=[DeploymentState.IN_REVIEW, DeploymentState.APPROVED],
        )
        .select_related("team", "template", "owner")
        .order_by("planned_date", "pk")
    )
    waiting = []
    by_deployment = standings(deployments)
    for deployment in deployments:
        for standing in by_deployment[deployment.pk]:
            if standing.role.pk in held[deployment.team_id] and not standing.fresh:
                waiting.append((deployment, standing))
    return waiting


def signed_by(user, *, limit: int = 50) -> QuerySet[SignOff]:
    """The user's own signatures, newest first (not what they approved: a JSON document
    each, that the list never shows)."""
    return (
        SignOff.objects.filter(user=user)
        .select_related("deployment", "role", "revocation")
        .defer("approved_state")
        .order_by("-signed_at")[:limit]
    )


def role_members(team, role) -> QuerySet:
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(role_memberships__team=team, role_memberships__role=role)
        .order_by("last_name", "first_name", "username")
    )


def item_waivers(deployment: Deployment) -> dict[int, list[Waiver]]:
    """Every waiver ever granted on the deployment's items, newest first, per item id."""
    grouped: dict[int, list[Waiver]] = {}
    for waiver in (
        Waiver.objects.filter(item__section__deployment=deployment)
        .select_related("granted_by", "withdrawn_by", "item__section", "item__owner_role")
        .order_by("-granted_at")
    ):
        grouped.setdefault(waiver.item_id, []).append(waiver)
    return grouped
