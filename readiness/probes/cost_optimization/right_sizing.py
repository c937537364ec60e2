"""Cost Optimization / Right-Sizing: instances match their actual usage.

The check is Performance's Resource Sizing one, shared in aws.py: one measurement, judged
for two items with their own severity."""

from __future__ import annotations

from readiness.probes.aws import SIZING_ACTIONS, SIZING_REMEDIATION, right_sizing
from readiness.probes.base import Scope, Severity, probe

probe(
    key="cost.right_sizing",
    section="Cost Optimization",
    item="Right-Sizing",
    title="Running instances match their actual usage",
    actions=SIZING_ACTIONS,
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=SIZING_REMEDIATION,
)(right_sizing)
