"""Security / Security Groups: ingress closed to the internet except on the allowed public
ports, judged on every group, attached or not (Security Hub EC2.18, EC2.19, EC2.53, EC2.54)."""

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

# Remote server administration ports of Security Hub EC2.53 (0.0.0.0/0) and EC2.54 (::/0);
# EC2.13 and EC2.14 name them one by one.
ADMINISTRATION_PORTS = {22: "SSH", 3389: "RDP"}
# The ports Security Hub EC2.19 (Config rule restricted-common-ports) calls high risk.
HIGH_RISK_PORTS = (
    20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432,
    5500, 5601, 8080, 8088, 8888, 9200, 9300,
)  # fmt: skip


def _ports(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _exposure(lo: int, hi: int) -> str:
    """What a reader must see first in an open range: the administration and high-risk ports
    it includes."""
    admin = [f"{port} ({name})" for port, name in ADMINISTRATION_PORTS.items() if lo <= port <= hi]
    risky = [
        str(port)
        for port in HIGH_RISK_PORTS
        if lo <= port <= hi and port not in ADMINISTRATION_PORTS
    ]
    notes = []
    if admin:
        notes.append(
            "administration " + ("port " if len(admin) == 1 else "ports ") + ", ".join(admin)
        )
    if len(risky) > 3:
        notes.append(f"{len(risky)} high-risk ports")
    elif risky:
        notes.append("high-risk " + ("port " if len(risky) == 1 else "ports ") + ", ".join(risky))
    return f" [{'; '.join(notes)}]" if notes else ""


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
        what = f"{protocol} {_ports(lo, hi)}{_exposure(lo, hi)}"
    else:
        what = f"protocol {protocol}"
    return [f"{what} from {cidr}" for cidr in cidrs]


@probe(
    key="network.security_groups",
    section=SECTION,
    item="Security Groups",
    title=(
        "No security group, attached or not, admits the internet (0.0.0.0/0, ::/0) except on "
        "allowed ports"
    ),
    actions=("ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=(
        "Remove the inbound rules from 0.0.0.0/0 and ::/0 (`aws ec2 "
        "revoke-security-group-ingress`; console: Security group > Inbound rules > Edit) and "
        "allow the known sources instead: the load balancer's security group, a VPN or "
        "office CIDR, or a managed prefix list; use SSM Session Manager instead of opening "
        "SSH/RDP. Delete security groups that nothing uses (`aws ec2 delete-security-group`): "
        "an unattached group is one attachment away from exposing what it opens."
    ),
)
def security_groups(context: ProbeContext) -> ProbeResult:
    """Every security group, attached to a network interface or not, fails when it admits
    0.0.0.0/0 or ::/0 on a TCP/UDP port outside `allowed_public_ports` or on all protocols,
    as Security Hub EC2.18 judges every group; findings name administration (22, 3389) and
    EC2.19 high-risk ports, and whether the group is attached today."""
    allowed = tuple(context.settings.allowed_public_ports)
    groups = list(context.paginate("ec2", "describe_security_groups", "SecurityGroups"))
    if not groups:
        return verdict([], passed="", failed="", empty="No security groups in this region")
    interfaces: dict[str, int] = {}
    for interface in context.paginate("ec2", "describe_network_interfaces", "NetworkInterfaces"):
        for group in interface.get("Groups", []):
            interfaces[group["GroupId"]] = interfaces.get(group["GroupId"], 0) + 1
    findings = []
    unattached_open = 0
    for group in groups:
        group_id = group["GroupId"]
        problems = [
            problem
            for permission in group.get("IpPermissions", [])
            for problem in open_to_world(permission, allowed)
        ]
        count = interfaces.get(group_id, 0)
        attachment = (
            f"attached to {count} network interface{'s' if count != 1 else ''}"
            if count
            else "not attached to any network interface"
        )
        if not problems:
            findings.append(
                Finding(group_id, Status.PASS, f"no ingress open to the internet ({attachment})")
            )
            continue
        unattached_open += not count
        findings.append(Finding(group_id, Status.FAIL, "; ".join(problems) + f" ({attachment})"))
    return verdict(
        findings,
        passed="{total} security groups checked; none admits the internet outside the "
        "allowed ports",
        failed="{failed} of {total} security groups admit the internet on non-allowed ports"
        + (f" ({unattached_open} of them attached to nothing)" if unattached_open else ""),
        empty="",
        facts={
            "allowed_public_ports": list(allowed),
            "security_groups": len(groups),
            "attached": len(interfaces),
            "open_and_unattached": unattached_open,
        },
    )
