import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, registry
from tests.conftest import REGION
from tests.readiness.probes.cost_optimization.helpers import by_id, run


def _nat_vpc(aws, cidr: str = "10.1.0.0/16", *, routed: bool = True, **kwargs) -> dict:
    """A VPC with a NAT gateway and, if `routed`, a private route table sending 0.0.0.0/0 to
    it."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24")["Subnet"]["SubnetId"]
    if kwargs.get("ConnectivityType") != "private":
        kwargs["AllocationId"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, **kwargs)["NatGateway"]["NatGatewayId"]
    ids = {"vpc": vpc, "nat": nat}
    if routed:
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ids["table"] = table
    return ids


def _endpoint(aws, net: dict, service: str, tables: list[str] | None = None) -> None:
    aws.client("ec2").create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName=f"com.amazonaws.{REGION}.{service}",
        VpcEndpointType="Gateway",
        RouteTableIds=[net["table"]] if tables is None else tables,
    )


def test_nat_passes_with_s3_and_dynamodb_gateway_endpoints(aws, make_context):
    net = _nat_vpc(aws)
    _endpoint(aws, net, "s3")
    _endpoint(aws, net, "dynamodb")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.PASS, result
    assert by_id(result)[net["vpc"]].reason == (
        f"S3 and DynamoDB gateway endpoints on all 1 route tables using NAT {net['nat']}"
    )
    assert result.facts["vpcs_with_nat"] == 1


def test_nat_fails_without_an_s3_endpoint_and_warns_without_dynamodb(aws, make_context):
    bare = _nat_vpc(aws)
    s3_only = _nat_vpc(aws, "10.2.0.0/16")
    _endpoint(aws, s3_only, "s3")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.FAIL
    found = by_id(result)
    assert found[bare["vpc"]].status == Status.FAIL
    assert found[bare["vpc"]].reason.startswith("no S3 gateway endpoint")
    assert "no DynamoDB gateway endpoint" in found[bare["vpc"]].reason
    assert found[s3_only["vpc"]].status == Status.WARN
    assert found[s3_only["vpc"]].reason.startswith("no DynamoDB gateway endpoint")


def test_nat_fails_when_the_s3_endpoint_misses_the_route_table_using_the_nat(aws, make_context):
    net = _nat_vpc(aws)
    other = aws.client("ec2").create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    _endpoint(aws, net, "s3", tables=[other])
    _endpoint(aws, net, "dynamodb")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.FAIL
    assert by_id(result)[net["vpc"]].reason == (
        f"the S3 gateway endpoint is not on route tables {net['table']}, which route through "
        "the NAT"
    )


def test_nat_warns_about_a_nat_gateway_no_route_table_uses(aws, make_context):
    net = _nat_vpc(aws, routed=False)
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.WARN
    assert by_id(result)[net["vpc"]].reason.startswith(f"NAT gateways {net['nat']} are in no route")


def test_nat_not_applicable_without_a_public_nat_gateway(aws, make_context):
    assert run("cost.nat_endpoints", make_context()).status == Status.NOT_APPLICABLE
    _nat_vpc(aws, ConnectivityType="private")
    result = run("cost.nat_endpoints", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.facts == {"nat_gateways": 0, "private_nat_gateways": 1}


@pytest.mark.parametrize(
    ("key", "service", "operation", "expected"),
    [
        ("cost.nat_endpoints", "ec2", "describe_nat_gateways", "ec2:DescribeNatGateways"),
    ],
)
def test_refused_calls_name_the_iam_action(aws, make_context, key, service, operation, expected):
    context = make_context("global" if registry()[key].scope == "global" else REGION)
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, "AccessDeniedException", http_status_code=403)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(f"Access denied: the probe needs {expected}")
