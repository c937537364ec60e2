"""What the machine checks, for the people who have to trust it: the probe catalogue, the
least-privilege IAM policy built from the actions probes declare, and the trust policy of
the role a deployment's probes assume.

The policy is derived, never written by hand: a probe declares every IAM action it calls
(the probe tests record the calls made against moto and fail on an undeclared one), so the
policy grows and shrinks with the probes themselves.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FunctionType

from django.conf import settings

from readiness.probes.base import Probe, ProbeSettings, is_manual, registry
from readiness.probes.standards import NONE as NO_STANDARDS
from readiness.probes.standards import Standards, standards_of

POLICY_VERSION = "2012-10-17"
# IAM access level "Read"/"List" by naming convention; the exceptions are listed by name.
READ_ONLY_VERBS = ("Describe", "Get", "List", "BatchGet", "View", "Head", "Lookup", "Search")
READ_ONLY_ACTIONS = {
    # API Gateway authorizes by HTTP verb: GET reads.
    "apigateway:GET",
    # Builds the credential report the account already has a right to read; changes nothing.
    "iam:GenerateCredentialReport",
}
# AWS's limit for a customer managed policy, counted without whitespace.
MANAGED_POLICY_MAX_CHARS = 6144
_THRESHOLD_NAMES = {f.name for f in dataclasses.fields(ProbeSettings)}


def is_read_only(action: str) -> bool:
    if action in READ_ONLY_ACTIONS:
        return True
    _, _, name = action.partition(":")
    return name.startswith(READ_ONLY_VERBS)


def declared_actions(probes: Iterable[Probe] | None = None) -> list[str]:
    probes = registry().values() if probes is None else probes
    return sorted({action for probe in probes for action in probe.actions})


def permissions_policy(probes: Iterable[Probe] | None = None) -> dict:
    """The identity policy for the probes' role: every declared action, read-only only.

    Raises ValueError if a probe declares an action that is not read-only: that would be a
    bug in the probe, and publishing it would hand out write access.
    """
    actions = declared_actions(probes)
    writes = [action for action in actions if not is_read_only(action)]
    if writes:
        raise ValueError(f"probes declare actions that are not read-only: {', '.join(writes)}")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ReadinessProbesReadOnly",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
            }
        ],
    }


def trust_policy(*, principal: str, external_id: str) -> dict:
    """Who may assume the probes' role: the Readiness workers, with this deployment's
    external id (the confused-deputy guard when one Readiness serves several accounts)."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ReadinessWorkersAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def policy_json(policy: dict) -> str:
    return json.dumps(policy, indent=2) + "\n"


def compact_size(policy: dict) -> int:
    return len(re.sub(r"\s", "", json.dumps(policy)))


def worker_principal() -> str:
    return settings.PROBE_WORKER_PRINCIPAL


def account_trust_policy(account) -> tuple[dict | None, list[str]]:
    """(trust policy, []) for the probe role of one of a deployment's accounts, or (None,
    what is missing)."""
    principal = worker_principal()
    missing = []
    if not principal:
        missing.append(
            "the server does not name the principal its workers run as "
            "(PROBE_WORKER_PRINCIPAL, set by the operator)"
        )
    if not account.external_id:
        missing.append(
            "this account has no external id (set one on the AWS target page; without "
            "it anyone who can name your role on the same Readiness server could read it)"
        )
    if missing:
        return None, missing
    return trust_policy(principal=principal, external_id=account.external_id), []


def _code_names(code: CodeType, seen: set) -> set[str]:
    if code in seen:
        return set()
    seen.add(code)
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _code_names(const, seen)
    return names


def thresholds_of(probe: Probe) -> list[str]:
    """The ProbeSettings a probe reads, found in its code and in the module functions it
    calls (one level): shown in the catalogue so a reviewer sees which policy applies."""
    check = probe.check
    seen: set = set()
    names = _code_names(check.__code__, seen)
    module_globals = getattr(check, "__globals__", {})
    for name in list(names):
        helper = module_globals.get(name)
        if isinstance(helper, FunctionType) and helper.__module__ == check.__module__:
            names |= _code_names(helper.__code__, seen)
    return sorted(names & _THRESHOLD_NAMES)


@dataclass(frozen=True)
class CatalogueEntry:
    probe: Probe
    rule: str
    thresholds: list[tuple[str, object]]
    standards: Standards = NO_STANDARDS


@dataclass(frozen=True)
class CatalogueItem:
    section: str
    title: str
    description: str
    entries: list[CatalogueEntry]

    @property
    def manual(self) -> bool:
        return is_manual(entry.probe for entry in self.entries)


def catalogue(template, probe_settings: ProbeSettings) -> list[tuple[str, list[CatalogueItem]]]:
    """[(section, [item])] in the template's order, each item with its probes (possibly
    none: a manual item), plus a last group for probes whose item the template lacks."""
    by_item: dict[tuple[str, str], list[Probe]] = {}
    for probe in sorted(registry().values(), key=lambda p: p.key):
        by_item.setdefault((probe.section, probe.item), []).append(probe)

    def entry(probe: Probe) -> CatalogueEntry:
        doc = (probe.check.__doc__ or "").strip()
        return CatalogueEntry(
            probe=probe,
            rule=" ".join(doc.split()) if doc else "",
            thresholds=[(name, getattr(probe_settings, name)) for name in thresholds_of(probe)],
            standards=standards_of(probe.key),
        )

    groups = []
    placed = set()
    if template is not None:
        for section in template.sections.prefetch_related("items").order_by("position"):
            items = []
            for item in section.items.order_by("position"):
                key = (section.title, item.title)
                placed.add(key)
                items.append(
                    CatalogueItem(
                        section=section.title,
                        title=item.title,
                        description=item.description,
                        entries=[entry(probe) for probe in by_item.get(key, [])],
                    )
                )
            groups.append((section.title, items))
    elsewhere = [
        CatalogueItem(section=key[0], title=key[1], description="", entries=list(map(entry, ps)))
        for key, ps in sorted(by_item.items())
        if key not in placed
    ]
    if elsewhere:
        groups.append(("Items not in this template", elsewhere))
    return groups
