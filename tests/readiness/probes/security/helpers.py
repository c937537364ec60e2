"""What the tests of the Security probes share."""

from readiness.probes.base import execute, registry


def run(key, context):
    return execute(registry()[key], context).result


def _vpc(aws, cidr="10.0.0.0/16", public=True) -> dict:
    """A VPC with a private subnet (main route table) and, if asked, a public one."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    private = ec2.create_subnet(
        VpcId=vpc, CidrBlock=f"{base}.1.0/24", AvailabilityZone="us-east-1a"
    )["Subnet"]["SubnetId"]
    private_b = ec2.create_subnet(
        VpcId=vpc, CidrBlock=f"{base}.2.0/24", AvailabilityZone="us-east-1b"
    )["Subnet"]["SubnetId"]
    ids = {"vpc": vpc, "private": private, "private_b": private_b}
    if public:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"{base}.100.0/24", AvailabilityZone="us-east-1a"
        )["Subnet"]["SubnetId"]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        ids.update(public=subnet, igw=igw)
    return ids
