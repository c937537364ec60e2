"""Cost Optimization / NAT Optimization: VPC endpoints beside NAT gateways, so S3 and
DynamoDB traffic does not pay NAT processing."""

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


def _gateway_endpoint_tables(endpoints: list[dict], service: str) -> dict[str, set[str]]:
    """VPC → route tables an available gateway endpoint of `service` is associated with."""
    tables: dict[str, set[str]] = defaultdict(set)
    for endpoint in endpoints:
        if (
            endpoint.get("VpcEndpointType") == "Gateway"
            and endpoint.get("ServiceName", "").endswith(f".{service}")
            and str(endpoint.get("State", "")).lower() == "available"
        ):
            tables[endpoint["VpcId"]].update(endpoint.get("RouteTableIds", []))
    return tables


def _endpoint_problem(
    service: str, tables_through_nat: set[str], vpc_tables: set[str] | None
) -> str | None:
    if vpc_tables is None:
        return (
            f"no {service} gateway endpoint: {service} traffic goes through the NAT "
            "(charged per GB processed)"
        )
    missing = sorted(tables_through_nat - vpc_tables)
    if missing:
        return (
            f"the {service} gateway endpoint is not on route tables {', '.join(missing)}, "
            "which route through the NAT"
        )
    return None


@probe(
    key="cost.nat_endpoints",
    section=SECTION,
    item="NAT Optimization",
    title=(
        "VPCs with a NAT gateway have S3 and DynamoDB gateway endpoints on the route tables "
        "that use the NAT"
    ),
    actions=("ec2:DescribeNatGateways", "ec2:DescribeRouteTables", "ec2:DescribeVpcEndpoints"),
    scope=Scope.REGIONAL,
    severity=Severity.MEDIUM,
    remediation=(
        "Create free gateway endpoints for S3 and DynamoDB on the private route tables: "
        "console VPC > Endpoints > Create endpoint > AWS services > com.amazonaws.<region>.s3 "
        "(type Gateway) and select the route tables; or `aws ec2 create-vpc-endpoint --vpc-id "
        "<vpc> --service-name com.amazonaws.<region>.s3 --vpc-endpoint-type Gateway "
        "--route-table-ids <rtb> ...` (same for .dynamodb). Delete NAT gateways that no route "
        "table uses."
    ),
)
def nat_endpoints(context: ProbeContext) -> ProbeResult:
    gateways = list(
        context.paginate(
            "ec2",
            "describe_nat_gateways",
            "NatGateways",
            Filter=[{"Name": "state", "Values": ["available"]}],
        )
    )
    # A private NAT gateway has no route to the internet, so no S3/DynamoDB traffic to save.
    public = [g for g in gateways if (g.get("ConnectivityType") or "public") == "public"]
    facts = {"nat_gateways": len(public), "private_nat_gateways": len(gateways) - len(public)}
    if not public:
        return verdict(
            [],
            passed="",
            failed="",
            empty=f"No public NAT gateway in {context.region}",
            facts=facts,
        )
    nats_of_vpc: dict[str, set[str]] = defaultdict(set)
    for gateway in public:
        nats_of_vpc[gateway["VpcId"]].add(gateway["NatGatewayId"])
    through_nat: dict[str, set[str]] = defaultdict(set)
    for table in context.paginate("ec2", "describe_route_tables", "RouteTables"):
        nats = nats_of_vpc.get(table.get("VpcId"), set())
        if any(
            route.get("NatGatewayId") in nats and route.get("State") != "blackhole"
            for route in table.get("Routes", [])
        ):
            through_nat[table["VpcId"]].add(table["RouteTableId"])
    endpoints = list(context.paginate("ec2", "describe_vpc_endpoints", "VpcEndpoints"))
    s3_tables = _gateway_endpoint_tables(endpoints, "s3")
    dynamodb_tables = _gateway_endpoint_tables(endpoints, "dynamodb")
    findings = []
    for vpc, nats in sorted(nats_of_vpc.items()):
        tables = through_nat[vpc]
        if not tables:
            findings.append(
                Finding(
                    vpc,
                    Status.WARN,
                    f"NAT gateways {', '.join(sorted(nats))} are in no route table: charged "
                    "by the hour, carrying nothing",
                )
            )
            continue
        s3 = _endpoint_problem("S3", tables, s3_tables.get(vpc))
        dynamodb = _endpoint_problem("DynamoDB", tables, dynamodb_tables.get(vpc))
        problems = [p for p in (s3, dynamodb) if p]
        if problems:
            status = Status.FAIL if s3 else Status.WARN
            reason = "; ".join(problems)
        else:
            status = Status.PASS
            reason = f"S3 and DynamoDB gateway endpoints on all {len(tables)} route tables "
            reason += f"using NAT {', '.join(sorted(nats))}"
        findings.append(Finding(vpc, status, reason))
    return verdict(
        findings,
        passed="All {total} VPCs with a NAT gateway reach S3 and DynamoDB through gateway "
        "endpoints",
        failed="{failed} of {total} VPCs with a NAT gateway send S3 traffic through the NAT",
        warned="{warned} of {total} VPCs with a NAT gateway lack a DynamoDB gateway endpoint "
        "or have an unused NAT",
        empty="",
        facts={
            **facts,
            "vpcs_with_nat": len(nats_of_vpc),
            "s3_gateway_endpoint_vpcs": len(s3_tables),
            "dynamodb_gateway_endpoint_vpcs": len(dynamodb_tables),
        },
    )
