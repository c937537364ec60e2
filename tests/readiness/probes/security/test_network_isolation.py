from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.security.helpers import _vpc, run


def _instance(aws, subnet: str | None, **kwargs) -> str:
    if subnet:
        kwargs["SubnetId"] = subnet
    return aws.client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, **kwargs
    )["Instances"][0]["InstanceId"]


def test_ec2_private_passes_for_instances_in_private_subnets(aws, make_context):
    net = _vpc(aws)
    _instance(aws, net["private"])
    result = run("network.ec2_private", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"instances": 1, "public_subnets": 1}


def test_ec2_private_fails_for_public_subnet_or_public_ip(aws, make_context):
    net = _vpc(aws)
    private = _instance(aws, net["private"])
    in_public_subnet = _instance(aws, net["public"])
    with_public_ip = _instance(
        aws,
        None,
        NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": net["private_b"], "AssociatePublicIpAddress": True}
        ],
    )
    result = run("network.ec2_private", make_context())
    assert result.status == Status.FAIL
    by_id = {f.resource: f for f in result.findings}
    assert by_id[private].status == Status.PASS
    assert by_id[in_public_subnet].status == Status.FAIL
    assert f"routes to {net['igw']}" in by_id[in_public_subnet].reason
    assert by_id[with_public_ip].status == Status.FAIL
    assert "public IP" in by_id[with_public_ip].reason


def _database(aws, name: str, subnets: list[str], public: bool = False) -> str:
    rds = aws.client("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{name}-subnets", DBSubnetGroupDescription=name, SubnetIds=subnets
    )
    return rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-checked-here",
        AllocatedStorage=20,
        DBSubnetGroupName=f"{name}-subnets",
        PubliclyAccessible=public,
    )["DBInstance"]["DBInstanceArn"]


def test_rds_private_passes_for_private_instances_in_private_subnets(aws, make_context):
    net = _vpc(aws)
    _database(aws, "orders", [net["private"], net["private_b"]])
    result = run("network.rds_private", make_context())
    assert result.status == Status.PASS, result


def test_rds_private_fails_when_public_or_in_a_public_subnet(aws, make_context):
    net = _vpc(aws)
    exposed = _database(aws, "exposed", [net["private"], net["private_b"]], public=True)
    misplaced = _database(aws, "misplaced", [net["private"], net["public"]])
    result = run("network.rds_private", make_context())
    assert result.status == Status.FAIL
    reasons = {f.resource: f.reason for f in result.findings if f.status == Status.FAIL}
    assert "PubliclyAccessible" in reasons[exposed]
    assert net["public"] in reasons[misplaced]


def test_vpc_private_subnets_passes_when_each_vpc_has_one(aws, make_context):
    _vpc(aws)
    _vpc(aws, cidr="10.1.0.0/16", public=False)
    result = run("network.vpc_private_subnets", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["vpcs"] == 2  # the default VPC is not judged


def test_vpc_private_subnets_fails_when_the_main_route_table_is_public(aws, make_context):
    ec2 = aws.client("ec2")
    net = _vpc(aws)
    # Send the main route table to the internet gateway: every subnet becomes public.
    main = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [net["vpc"]]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    empty = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    result = run("network.vpc_private_subnets", make_context())
    assert result.status == Status.FAIL
    by_id = {f.resource: f for f in result.findings}
    assert by_id[net["vpc"]].status == Status.FAIL
    assert by_id[empty].status == Status.WARN


def test_no_non_default_vpc_is_not_applicable(aws, make_context):
    assert run("network.vpc_private_subnets", make_context()).status == Status.NOT_APPLICABLE


def test_unauthorized_route_table_read_is_an_error_not_a_pass(aws, make_context):
    _instance(aws, _vpc(aws)["private"])
    context = make_context()
    client = context.client("ec2")
    real = client.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
    )
    with Stubber(client) as stubber:
        # The instance list goes through; the route tables are refused.
        stubber.add_response("describe_instances", {"Reservations": real["Reservations"]})
        stubber.add_client_error(
            "describe_route_tables", service_error_code="UnauthorizedOperation"
        )
        result = run("network.ec2_private", context)
    assert result.status == Status.ERROR
    assert result.summary.startswith("Access denied: the probe needs ec2:DescribeRouteTables")
