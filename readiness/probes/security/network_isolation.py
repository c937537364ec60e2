"""Security / Network Isolation: instances and databases kept out of public subnets, VPCs
with private subnets."""

from __future__ import annotations

from dataclasses import dataclass

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

ISOLATION = "Network Isolation"

LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass(frozen=True)
class Topology:
    """Subnets of the region and, for the public ones, the internet gateway they route to."""

    subnet_vpc: dict[str, str]
    public: dict[str, str]


def _route_to_igw(table: dict) -> str | None:
    for route in table.get("Routes", []):
        gateway = route.get("GatewayId") or ""
        # "eigw-" (egress-only, IPv6) does not make a subnet reachable from the internet;
        # a blackhole route points at a deleted gateway and carries no traffic.
        if gateway.startswith("igw-") and route.get("State") != "blackhole":
            return gateway
    return None


def topology(context: ProbeContext) -> Topology:
    explicit: dict[str, str | None] = {}
    main: dict[str, str | None] = {}
    for table in context.paginate("ec2", "describe_route_tables", "RouteTables"):
        igw = _route_to_igw(table)
        for association in table.get("Associations", []):
            state = (association.get("AssociationState") or {}).get("State", "associated")
            if state not in ("associated", "associating"):
                continue
            if association.get("Main"):
                main[table["VpcId"]] = igw
            elif association.get("SubnetId"):
                explicit[association["SubnetId"]] = igw
    subnet_vpc = {
        subnet["SubnetId"]: subnet["VpcId"]
        for subnet in context.paginate("ec2", "describe_subnets", "Subnets")
    }
    public = {}
    for subnet_id, vpc_id in subnet_vpc.items():
        # A subnet without an explicit association uses its VPC's main route table.
        igw = explicit[subnet_id] if subnet_id in explicit else main.get(vpc_id)
        if igw:
            public[subnet_id] = igw
    return Topology(subnet_vpc, public)


ROUTE_ACTIONS = ("ec2:DescribeRouteTables", "ec2:DescribeSubnets")


@probe(
    key="network.ec2_private",
    section=SECTION,
    item=ISOLATION,
    title="EC2 instances have no public IP and sit in private subnets",
    actions=("ec2:DescribeInstances", *ROUTE_ACTIONS),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Launch instances in private subnets (route table without a 0.0.0.0/0 route to an "
        "internet gateway; outbound through a NAT gateway or VPC endpoints) with "
        "AssociatePublicIpAddress=false (subnet setting MapPublicIpOnLaunch=false), and "
        "expose them through a load balancer in the public subnets; reach them with SSM "
        "Session Manager instead of a public SSH port."
    ),
)
def ec2_private(context: ProbeContext) -> ProbeResult:
    instances = [
        instance
        for reservation in context.paginate(
            "ec2",
            "describe_instances",
            "Reservations",
            Filters=[{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}],
        )
        for instance in reservation["Instances"]
    ]
    if not instances:
        return verdict([], passed="", failed="", empty="No live EC2 instances in this region")
    network = topology(context)
    findings = []
    for instance in instances:
        problems = []
        if instance.get("PublicIpAddress"):
            problems.append(f"public IP {instance['PublicIpAddress']}")
        subnet = instance.get("SubnetId")
        if subnet in network.public:
            problems.append(f"in public subnet {subnet} (routes to {network.public[subnet]})")
        findings.append(
            Finding(
                instance["InstanceId"],
                Status.FAIL if problems else Status.PASS,
                "; ".join(problems) if problems else f"private subnet {subnet}, no public IP",
            )
        )
    return verdict(
        findings,
        passed="{total} EC2 instances are private (no public IP, private subnet)",
        failed="{failed} of {total} EC2 instances are reachable from the internet "
        "(public IP or public subnet)",
        empty="",
        facts={"instances": len(findings), "public_subnets": len(network.public)},
    )


@probe(
    key="network.rds_private",
    section=SECTION,
    item=ISOLATION,
    title="RDS instances are not publicly accessible and use only private subnets",
    actions=("rds:DescribeDBInstances", *ROUTE_ACTIONS),
    scope=Scope.REGIONAL,
    severity=Severity.CRITICAL,
    remediation=(
        "Set PubliclyAccessible=false (`aws rds modify-db-instance --no-publicly-accessible "
        "--apply-immediately`; console: Connectivity > Public access: No) and give the "
        "instance a DB subnet group made only of private subnets (no route to an internet "
        "gateway); a subnet group cannot be changed in place within the same VPC, so create "
        "a new one and move the instance during a maintenance window."
    ),
)
def rds_private(context: ProbeContext) -> ProbeResult:
    databases = list(context.paginate("rds", "describe_db_instances", "DBInstances"))
    if not databases:
        return verdict([], passed="", failed="", empty="No RDS DB instances in this region")
    network = topology(context)
    findings = []
    for database in databases:
        problems = []
        if database.get("PubliclyAccessible"):
            problems.append("PubliclyAccessible is true")
        subnets = [
            subnet["SubnetIdentifier"]
            for subnet in (database.get("DBSubnetGroup") or {}).get("Subnets", [])
        ]
        # RDS may place the instance (or move it on failover) in any subnet of its group.
        public = sorted(s for s in subnets if s in network.public)
        if public:
            problems.append(f"subnet group includes public subnets {', '.join(public)}")
        findings.append(
            Finding(
                database["DBInstanceArn"],
                Status.FAIL if problems else Status.PASS,
                "; ".join(problems)
                if problems
                else f"not publicly accessible; {len(subnets)} private subnets",
            )
        )
    return verdict(
        findings,
        passed="{total} RDS instances are private",
        failed="{failed} of {total} RDS instances are publicly accessible or in public subnets",
        empty="",
        facts={"db_instances": len(findings), "public_subnets": len(network.public)},
    )


@probe(
    key="network.vpc_private_subnets",
    section=SECTION,
    item=ISOLATION,
    title="Every non-default VPC has at least one private subnet",
    actions=("ec2:DescribeVpcs", *ROUTE_ACTIONS),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Add private subnets (one per Availability Zone) whose route table has no route to "
        "the internet gateway and sends 0.0.0.0/0 to a NAT gateway, or nothing at all plus "
        "VPC endpoints; in IaC a separate AWS::EC2::RouteTable per private subnet, or the "
        "`private_subnets` of the terraform-aws-modules/vpc module."
    ),
)
def vpc_private_subnets(context: ProbeContext) -> ProbeResult:
    vpcs = [
        vpc["VpcId"]
        for vpc in context.paginate("ec2", "describe_vpcs", "Vpcs")
        if not vpc.get("IsDefault")
    ]
    if not vpcs:
        return verdict([], passed="", failed="", empty="No non-default VPCs in this region")
    network = topology(context)
    findings = []
    for vpc_id in vpcs:
        subnets = [s for s, v in network.subnet_vpc.items() if v == vpc_id]
        private = [s for s in subnets if s not in network.public]
        if private:
            status = Status.PASS
            reason = f"{len(private)} private of {len(subnets)} subnets"
        elif subnets:
            status = Status.FAIL
            reason = f"all {len(subnets)} subnets route to an internet gateway"
        else:
            # Nothing can run in a VPC without subnets: nothing is exposed, but nothing is
            # ready for private workloads either.
            status, reason = Status.WARN, "no subnets"
        findings.append(Finding(vpc_id, status, reason))
    return verdict(
        findings,
        passed="All {total} non-default VPCs have a private subnet",
        failed="{failed} of {total} non-default VPCs have only public subnets",
        warned="{warned} of {total} non-default VPCs have no subnets",
        empty="",
        facts={"vpcs": len(findings), "public_subnets": len(network.public)},
    )
