"""Cost Optimization / Development Toggles: non-production Auto Scaling groups that sleep
outside working hours."""

from __future__ import annotations

from collections import defaultdict

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    probe,
    verdict,
)

SECTION = "Cost Optimization"


def _when(action: dict) -> str:
    when = f"'{action['Recurrence']}'"
    return f"{when} {action['TimeZone']}" if action.get("TimeZone") else f"{when} UTC"


def _scales_to_zero(action: dict, group: dict) -> bool:
    # An action leaving MinSize above zero fails when it runs, so the minimum must be 0 too.
    minimum = action.get("MinSize", group.get("MinSize"))
    return minimum == 0 and (action.get("DesiredCapacity") == 0 or action.get("MaxSize") == 0)


def _scales_up(action: dict) -> bool:
    return (action.get("DesiredCapacity") or 0) > 0 or (action.get("MinSize") or 0) > 0


def _judge_group(group: dict, actions: list[dict]) -> tuple[Status, str]:
    recurring = [a for a in actions if a.get("Recurrence")]
    stops = [a for a in recurring if _scales_to_zero(a, group)]
    starts = [a for a in recurring if _scales_up(a)]
    if stops and starts:
        return (
            Status.PASS,
            f"scales to zero at {', '.join(_when(a) for a in stops)} and back up at "
            f"{', '.join(_when(a) for a in starts)}",
        )
    if group.get("MaxSize") == 0 and group.get("DesiredCapacity") == 0:
        return Status.PASS, "parked at zero (MaxSize 0): costs nothing while off"
    one_off = len(actions) - len(recurring)
    note = f" ({one_off} one-off scheduled actions do not repeat)" if one_off else ""
    if stops:
        return (
            Status.FAIL,
            f"scales to zero at {', '.join(_when(a) for a in stops)} but no recurring action "
            f"scales it back up{note}",
        )
    return (
        Status.FAIL,
        "no recurring scheduled action scales it to zero (MinSize and DesiredCapacity 0): "
        f"runs around the clock{note}",
    )


@probe(
    key="cost.dev_toggles",
    section=SECTION,
    item="Development Toggles",
    title=(
        "Non-production Auto Scaling groups (by environment tag) scale to zero and back up on "
        "a recurring schedule"
    ),
    actions=("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScheduledActions"),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Add recurring scheduled actions to each non-production group: `aws autoscaling "
        "put-scheduled-update-group-action --auto-scaling-group-name <group> "
        "--scheduled-action-name night --recurrence '0 20 * * 1-5' --time-zone <tz> "
        "--min-size 0 --desired-capacity 0` and a matching 'morning' action with the working "
        "sizes (console: EC2 > Auto Scaling groups > group > Automatic scaling > Scheduled "
        "actions); or use AWS Instance Scheduler."
    ),
)
def dev_toggles(context: ProbeContext) -> ProbeResult:
    tag_key = context.settings.environment_tag_key
    production = {value.strip().lower() for value in context.settings.production_environments}
    groups = list(
        context.paginate("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups")
    )
    non_production = []
    for group in groups:
        environments = [
            str(tag.get("Value", "")).strip()
            for tag in group.get("Tags", [])
            if tag.get("Key", "").lower() == tag_key.lower()
        ]
        # An empty value names no environment: such a group is treated as untagged.
        if environments and environments[0] and environments[0].lower() not in production:
            non_production.append((group, environments[0]))
    facts = {
        "auto_scaling_groups": len(groups),
        "non_production_groups": len(non_production),
        "environment_tag_key": tag_key,
        "production_environments": sorted(production),
    }
    if not non_production:
        return verdict(
            [],
            passed="",
            failed="",
            empty=f"No Auto Scaling group tagged {tag_key} with a non-production value in "
            f"{context.region}",
            facts=facts,
        )
    actions: dict[str, list[dict]] = defaultdict(list)
    for action in context.paginate(
        "autoscaling", "describe_scheduled_actions", "ScheduledUpdateGroupActions"
    ):
        actions[action.get("AutoScalingGroupName", "")].append(action)
    findings = []
    for group, environment in non_production:
        name = group["AutoScalingGroupName"]
        status, reason = _judge_group(group, actions[name])
        findings.append(Finding(name, status, f"{tag_key}={environment}: {reason}"))
    return verdict(
        findings,
        passed="All {total} non-production Auto Scaling groups sleep on a schedule",
        failed="{failed} of {total} non-production Auto Scaling groups run around the clock",
        empty="",
        facts=facts,
    )
