"""What the tests of the Reliability probes share."""

from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry

REGION = "us-east-1"

ACCOUNT = "123456789012"

PASSWORD = "a-long-password-1"


def run(key, context):
    return execute(registry()[key], context).result


def failing(result):
    return {f.resource for f in result.findings if f.status == Status.FAIL}


def rds_instance(aws, name, region=REGION, **extra):
    aws.client("rds", region_name=region).create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        AllocatedStorage=20,
        **extra,
    )
    return f"arn:aws:rds:{region}:{ACCOUNT}:db:{name}"


def table(aws, name, **extra):
    aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def backup_plan(aws, name, **rule):
    return aws.client("backup").create_backup_plan(
        BackupPlan={
            "BackupPlanName": name,
            "Rules": [{"RuleName": "daily", "TargetBackupVaultName": "main", **rule}],
        }
    )["BackupPlanArn"]


def names(resources):
    return {r.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for r in resources}


def subnets(aws, zones=("us-east-1a", "us-east-1b")):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ids = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for n, zone in enumerate(zones)
    ]
    return vpc, ids


def asg(aws, name, **params):
    autoscaling = aws.client("autoscaling")
    if not autoscaling.describe_launch_configurations(LaunchConfigurationNames=["lc"])[
        "LaunchConfigurations"
    ]:
        autoscaling.create_launch_configuration(
            LaunchConfigurationName="lc", ImageId="ami-12345678", InstanceType="t3.micro"
        )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName="lc", **{"MinSize": 0, **params}
    )


def assert_failed_call_is_an_error(context, key, service, operation, code, expected) -> None:
    """A call failing with `code` makes the probe an error result whose summary says so."""
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, service_error_code=code, http_status_code=500)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(expected), result.summary
