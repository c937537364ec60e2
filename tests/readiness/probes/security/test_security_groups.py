import pytest

from readiness.probes.base import Status
from readiness.probes.security.security_groups import open_to_world
from tests.readiness.probes.security.helpers import _vpc, run

WORLD_V4 = [{"CidrIp": "0.0.0.0/0"}]

WORLD_V6 = [{"CidrIpv6": "::/0"}]


def _group(aws, vpc: str, name: str, permissions: list) -> str:
    ec2 = aws.client("ec2")
    group = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
    return group


def _attach(aws, subnet: str, group: str) -> None:
    aws.client("ec2").create_network_interface(SubnetId=subnet, Groups=[group])


def test_security_groups_pass_with_only_web_ports_open(aws, make_context):
    net = _vpc(aws, public=False)
    web = _group(
        aws,
        net["vpc"],
        "web",
        [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": WORLD_V4},
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "Ipv6Ranges": WORLD_V6},
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            },
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": WORLD_V4},
        ],
    )
    _attach(aws, net["private"], web)
    result = run("network.security_groups", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["allowed_public_ports"] == [80, 443]


def test_security_groups_fail_open_groups_whether_attached_or_not(aws, make_context):
    net = _vpc(aws, public=False)
    ssh = _group(
        aws,
        net["vpc"],
        "ssh",
        [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": WORLD_V4}],
    )
    wide_open = _group(aws, net["vpc"], "all", [{"IpProtocol": "-1", "Ipv6Ranges": WORLD_V6}])
    _attach(aws, net["private"], ssh)
    _attach(aws, net["private"], wide_open)
    spare = _group(
        aws,
        net["vpc"],
        "spare",
        [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 8080, "IpRanges": WORLD_V4}],
    )
    result = run("network.security_groups", make_context())
    assert result.status == Status.FAIL
    by_id = {f.resource: f for f in result.findings}
    assert by_id[ssh].status == Status.FAIL
    assert by_id[ssh].reason == (
        "tcp 22 [administration port 22 (SSH)] from 0.0.0.0/0 (attached to 1 network interface)"
    )
    assert by_id[wide_open].status == Status.FAIL
    assert by_id[wide_open].reason == (
        "all protocols and ports from ::/0 (attached to 1 network interface)"
    )
    # Security Hub EC2.18/EC2.19 judge every group: attaching this one is a single call.
    assert by_id[spare].status == Status.FAIL
    assert by_id[spare].reason.startswith("tcp 80-8080 [administration port 3389 (RDP);")
    assert by_id[spare].reason.endswith("(not attached to any network interface)")
    # The VPCs' own default groups, closed, make up the rest of the total.
    assert result.summary.startswith("3 of ")
    assert result.summary.endswith(
        " security groups admit the internet on non-allowed ports (1 of them attached to nothing)"
    )
    assert result.facts["open_and_unattached"] == 1


@pytest.mark.parametrize(
    ("permission", "reason"),
    [
        (
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": WORLD_V4},
            "tcp 22 [administration port 22 (SSH)] from 0.0.0.0/0",
        ),
        (
            {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": WORLD_V6},
            "tcp 3389 [administration port 3389 (RDP)] from ::/0",
        ),
        ({"IpProtocol": "-1", "IpRanges": WORLD_V4}, "all protocols and ports from 0.0.0.0/0"),
    ],
)
def test_an_unattached_group_open_to_administration_or_all_ports_fails(
    aws, make_context, permission, reason
):
    net = _vpc(aws, public=False)
    spare = _group(aws, net["vpc"], "spare", [permission])
    result = run("network.security_groups", make_context())
    assert result.status == Status.FAIL, result
    finding = {f.resource: f for f in result.findings}[spare]
    assert finding.status == Status.FAIL
    assert finding.reason == f"{reason} (not attached to any network interface)"


def test_an_unattached_group_open_only_on_allowed_ports_passes(aws, make_context):
    net = _vpc(aws, public=False)
    spare = _group(
        aws,
        net["vpc"],
        "spare-web",
        [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": WORLD_V6}],
    )
    result = run("network.security_groups", make_context())
    assert result.status == Status.PASS, result
    finding = {f.resource: f for f in result.findings}[spare]
    assert finding.reason == (
        "no ingress open to the internet (not attached to any network interface)"
    )


def test_allowed_public_ports_come_from_settings(aws, make_context):
    net = _vpc(aws, public=False)
    _attach(
        aws,
        net["private"],
        _group(
            aws,
            net["vpc"],
            "smtp",
            [{"IpProtocol": "tcp", "FromPort": 25, "ToPort": 25, "IpRanges": WORLD_V4}],
        ),
    )
    assert run("network.security_groups", make_context()).status == Status.FAIL
    relaxed = run("network.security_groups", make_context(allowed_public_ports=(25, 443)))
    assert relaxed.status == Status.PASS


@pytest.mark.parametrize(
    ("permission", "problems"),
    [
        ({"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": WORLD_V4}, []),
        (
            {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "IpRanges": WORLD_V4},
            [
                "udp 0-65535 [administration ports 22 (SSH), 3389 (RDP); 22 high-risk ports] "
                "from 0.0.0.0/0"
            ],
        ),
        (
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": WORLD_V4},
            ["tcp 5432 [high-risk port 5432] from 0.0.0.0/0"],
        ),
        (
            {"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "IpRanges": WORLD_V4},
            ["tcp 8443 from 0.0.0.0/0"],
        ),
        ({"IpProtocol": "50", "IpRanges": WORLD_V4}, ["protocol 50 from 0.0.0.0/0"]),
        ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}, []),
    ],
)
def test_open_to_world_rules(permission, problems):
    assert open_to_world(permission, (80, 443)) == problems
