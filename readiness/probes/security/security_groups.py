"""Security / Security Groups: ingress closed to the internet except on the allowed public
ports."""

from __future__ import annotations

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

SECTION = "Security"


WORLD = ("0.0.0.0/0", "::/0")

_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def _ports(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def open_to_world(permission: dict, allowed: tuple[int, ...]) -> list[str]:
    """One "<protocol> <ports> from <cidr>" per world-open range outside the allowed ports."""
    cidrs = [r["CidrIp"] for r in permission.get("IpRanges", []) if r.get("CidrIp") in WORLD]
    cidrs += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", []) if r.get("CidrIpv6") in WORLD]
    if not cidrs:
        return []
    protocol = str(permission.get("IpProtocol", "-1")).lower()
    protocol = _PROTOCOL_NAMES.get(protocol, protocol)
    if protocol == "-1":
        what = "all protocols and ports"
    elif protocol in ("icmp", "icmpv6"):
        # ICMP has no ports; ping and path-MTU discovery from anywhere are not a service
        # exposure.
        return []
    elif protocol in ("tcp", "udp"):
        lo, hi = permission.get("FromPort", 0), permission.get("ToPort", 65535)
        if lo in (None, -1):
            lo, hi = 0, 65535
        if hi - lo < len(allowed) and all(port in allowed for port in range(lo, hi + 1)):
            return []
        what = f"{protocol} {_ports(lo, hi)}"
    else:
        what = f"protocol {protocol}"
    return [f"{what} from {cidr}" for cidr in cidrs]


@probe(
    key="network.security_groups",
    section=SECTION,
    item="Security Groups",
    title="No security group admits the internet (0.0.0.0/0, ::/0) except on allowed ports",
    actions=("ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=(
        "Remove the inbound rules from 0.0.0.0/0 and ::/0 (`aws ec2 "
        "revoke-security-group-ingress`; console: Security group > Inbound rules > Edit) and "
        "allow the known sources instead: the load balancer's security group, a VPN or "
        "office CIDR, or a managed prefix list; use SSM Session Manager instead of opening "
        "SSH/RDP. Delete security groups that nothing uses."
    ),
)
def security_groups(context: ProbeContext) -> ProbeResult:
    allowed = tuple(context.settings.allowed_public_ports)
    groups = list(context.paginate("ec2", "describe_security_groups", "SecurityGroups"))
    if not groups:
        return verdict([], passed="", failed="", empty="No security groups in this region")
    attached = {
        group["GroupId"]
        for interface in context.paginate("ec2", "describe_network_interfaces", "NetworkInterfaces")
        for group in interface.get("Groups", [])
    }
    findings = []
    for group in groups:
        group_id = group["GroupId"]
        problems = [
            problem
            for permission in group.get("IpPermissions", [])
            for problem in open_to_world(permission, allowed)
        ]
        in_use = group_id in attached
        if not problems:
            findings.append(Finding(group_id, Status.PASS, "no ingress open to the internet"))
        elif in_use:
            findings.append(Finding(group_id, Status.FAIL, "; ".join(problems)))
        else:
            # An unattached group exposes nothing today, but is one attachment away from it.
            reason = "; ".join(problems) + " (not attached to any network interface)"
            findings.append(Finding(group_id, Status.WARN, reason))
    return verdict(
        findings,
        passed="{total} security groups checked; none admits the internet outside the "
        "allowed ports",
        failed="{failed} of {total} security groups in use admit the internet on non-allowed ports",
        warned="{warned} of {total} security groups admit the internet on non-allowed ports "
        "but are attached to nothing",
        empty="",
        facts={
            "allowed_public_ports": list(allowed),
            "security_groups": len(groups),
            "attached": len(attached),
        },
    )
