"""A small emulated AWS organization (on a moto server) for the demo and the benchmark.

Its management account (seed_account) holds both compliant and non-compliant resources, so
a newcomer sees probes pass and fail without an AWS account; two member accounts
(seed_organization) hold a networking and a logging share of the deployment, read through
the role the probes assume in each, so that one deployment spans three accounts and a
failure in one of them fails its item. Never point this at real AWS: it creates resources.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

import boto3

DEMO_ACCOUNT = "123456789012"  # moto's account for any credentials: the management account
# The member accounts of the demo organization, created in this order; the emulator numbers
# them (readiness.dev.emulator), so they keep their ids from one start to the next.
DEMO_MEMBERS = ("networking", "logging")
PROBE_ROLE = "ReadinessProbe"
ORGANIZATION_READER = "OrganizationReader"
MEMBER_ROLE_PATTERN = "arn:aws:iam::{account}:role/" + PROBE_ROLE
DEMO_REGIONS = ("us-east-1", "eu-west-1")
DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
NARROW_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::demo-assets/*"}
    ],
}
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class DemoAccount:
    account_id: str
    name: str
    role_arn: str  # empty: read with the worker's own credentials


def seed_organization(endpoint_url: str, *, regions=DEMO_REGIONS) -> list[DemoAccount]:
    """The demo organization around seed_account's account: its management account (read
    with the worker's credentials), the role that lists its accounts, and the member accounts
    with the role the probes assume and their share of the deployment. The networking
    account opens SSH to the internet: one account failing, the others passing."""
    management, organizations, parent = _organization(endpoint_url, regions[0])
    accounts = [DemoAccount(DEMO_ACCOUNT, "workload", "")]
    for name in DEMO_MEMBERS:
        account_id, session = _member(management, organizations, parent, endpoint_url, name)
        _seed_member(session, endpoint_url, name, account_id, regions)
        accounts.append(
            DemoAccount(account_id, name, MEMBER_ROLE_PATTERN.format(account=account_id))
        )
    return accounts


def seed_copies(
    endpoint_url: str, *, members: int, regions=DEMO_REGIONS, scale: int = 1
) -> list[DemoAccount]:
    """The benchmark's organization: seed_account's account and `members` member accounts
    holding the same resources (seed_account in each), read through the probe role as the
    demo's members are; an organization whose accounts all cost a run the same."""
    seed_account(endpoint_url, regions=regions, scale=scale)
    accounts = [DemoAccount(DEMO_ACCOUNT, "copy-0", "")]
    if not members:
        return accounts
    management, organizations, parent = _organization(endpoint_url, regions[0])
    for number in range(1, members + 1):
        name = f"copy-{number}"
        account_id, session = _member(management, organizations, parent, endpoint_url, name)
        seed_account(
            endpoint_url, regions=regions, scale=scale, session=session, account_id=account_id
        )
        accounts.append(
            DemoAccount(account_id, name, MEMBER_ROLE_PATTERN.format(account=account_id))
        )
    return accounts


TRUST_MANAGEMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEMO_ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _organization(endpoint_url: str, region: str):
    """The organization with the demo account as its management account, a production OU
    for its members, and the role that lists its accounts: (session, client, OU id)."""
    management = boto3.Session(
        aws_access_key_id="demo", aws_secret_access_key="demo", region_name=region
    )
    organizations = management.client("organizations", endpoint_url=endpoint_url)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    production = organizations.create_organizational_unit(ParentId=root, Name="production")
    management.client("iam", endpoint_url=endpoint_url).create_role(
        RoleName=ORGANIZATION_READER, AssumeRolePolicyDocument=json.dumps(TRUST_MANAGEMENT)
    )
    return management, organizations, production["OrganizationalUnit"]["Id"]


def _member(management, organizations, parent: str, endpoint_url: str, name: str):
    """A new member account in the OU, holding the role the probes assume there:
    (account id, a session acting in it as its administrators)."""
    status = organizations.create_account(Email=f"{name}@example.com", AccountName=name)
    account_id = status["CreateAccountStatus"]["AccountId"]
    root = organizations.list_roots()["Roots"][0]["Id"]
    organizations.move_account(
        AccountId=account_id, SourceParentId=root, DestinationParentId=parent
    )
    session = member_session(management, endpoint_url, account_id, management.region_name)
    session.client("iam", endpoint_url=endpoint_url).create_role(
        RoleName=PROBE_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST_MANAGEMENT)
    )
    return account_id, session


def member_session(management, endpoint_url: str, account_id: str, region: str):
    """Act in a member account as its administrators do: through the role AWS
    Organizations created there."""
    credentials = management.client("sts", endpoint_url=endpoint_url).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="readiness-demo-setup",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _seed_member(session, endpoint_url: str, name: str, account_id: str, regions) -> None:
    def client(service: str, region: str = regions[0]):
        return session.client(service, region_name=region, endpoint_url=endpoint_url)

    iam = client("iam")
    iam.create_user(UserName=f"{name}-automation")
    iam.put_user_policy(
        UserName=f"{name}-automation",
        PolicyName="narrow",
        PolicyDocument=json.dumps(NARROW_POLICY),
    )
    for region in regions:
        kms = client("kms", region)
        key = kms.create_key(Description=f"{name} data key")["KeyMetadata"]["KeyId"]
        kms.enable_key_rotation(KeyId=key)
        client("logs", region).create_log_group(logGroupName=f"/{name}/audit")
        ec2 = client("ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        if name == "networking":
            bastion = ec2.create_security_group(
                GroupName="bastion", Description="SSH from anywhere", VpcId=vpc
            )
            ec2.authorize_security_group_ingress(
                GroupId=bastion["GroupId"],
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 22,
                        "ToPort": 22,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            )
    if name == "logging":
        bucket = f"demo-logs-{account_id}"
        s3 = client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )


def start_moto_server(port: int, *, log_path: str | None = None) -> subprocess.Popen:
    """Start the AWS emulator (readiness.emulator: moto's server) on 127.0.0.1:port and wait
    until it answers."""
    env = {
        **os.environ,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "false",
    }
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the server owns it
    process = subprocess.Popen(
        [sys.executable, "-m", "readiness.dev.emulator", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the AWS emulator did not start on port {port}") from None
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_account(
    endpoint_url: str,
    *,
    regions=DEMO_REGIONS,
    scale: int = 1,
    session: boto3.Session | None = None,
    account_id: str = DEMO_ACCOUNT,
) -> dict:
    """Create the demo account's resources; `scale` multiplies the per-region resources.

    With a session into another account (member_session), the same resources are created
    there: the benchmark's organization is that many copies of the demo account. Bucket names
    are global in S3 as in moto, so another account's carry its id."""
    if session is None:
        session = boto3.Session(
            aws_access_key_id="demo", aws_secret_access_key="demo", region_name=regions[0]
        )

    def bucket(name: str) -> str:
        return name if account_id == DEMO_ACCOUNT else f"{name}-{account_id}"

    def client(service: str, region: str = regions[0]):
        return session.client(service, region_name=region, endpoint_url=endpoint_url)

    counts: dict[str, int] = {}

    def count(kind: str, n: int = 1) -> None:
        counts[kind] = counts.get(kind, 0) + n

    iam = client("iam")
    for index in range(scale):
        iam.create_user(UserName=f"ci-deployer-{index}")
        iam.put_user_policy(
            UserName=f"ci-deployer-{index}",
            PolicyName="deploy",
            PolicyDocument=json.dumps(NARROW_POLICY),
        )
        count("iam users")
    iam.create_user(UserName="legacy-admin")
    iam.put_user_policy(
        UserName="legacy-admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Demo-password-123456")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    iam.put_role_policy(
        RoleName="app", PolicyName="assets", PolicyDocument=json.dumps(NARROW_POLICY)
    )
    count("iam users", 2)

    for number, region in enumerate(regions):
        ec2 = client("ec2", region)
        if number == 0:
            ec2.enable_ebs_encryption_by_default()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        public = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{region}a"
        )
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{region}b")
        routes = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=routes, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
        ec2.associate_route_table(RouteTableId=routes, SubnetId=public["Subnet"]["SubnetId"])
        web = ec2.create_security_group(
            GroupName="web", Description="HTTPS from anywhere", VpcId=vpc
        )
        ec2.authorize_security_group_ingress(
            GroupId=web["GroupId"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
        ssh = ec2.create_security_group(
            GroupName="ssh-open", Description="SSH from anywhere", VpcId=vpc
        )
        ec2.authorize_security_group_ingress(
            GroupId=ssh["GroupId"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
        for index in range(scale):
            ec2.create_volume(AvailabilityZone=f"{region}a", Size=20, Encrypted=True)
            ec2.create_volume(AvailabilityZone=f"{region}a", Size=20, Encrypted=index % 2 == 1)
            count("ebs volumes", 2)

        kms = client("kms", region)
        rotated = kms.create_key(Description="demo data key")["KeyMetadata"]["KeyId"]
        kms.enable_key_rotation(KeyId=rotated)
        kms.create_key(Description="demo key without rotation")
        count("kms keys", 2)

        s3 = client("s3", region)
        location = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        for index in range(scale):
            secure = bucket(f"demo-records-{region}-{index}")
            s3.create_bucket(Bucket=secure, **location)
            s3.put_bucket_encryption(
                Bucket=secure,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": rotated,
                            }
                        }
                    ]
                },
            )
            s3.put_bucket_policy(
                Bucket=secure,
                Policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "TLSOnly",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [f"arn:aws:s3:::{secure}", f"arn:aws:s3:::{secure}/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                ),
            )
            s3.create_bucket(Bucket=bucket(f"demo-assets-{region}-{index}"), **location)
            count("s3 buckets", 2)

        dynamodb = client("dynamodb", region)
        for index in range(scale):
            dynamodb.create_table(
                TableName=f"orders-{index}",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                SSESpecification={"Enabled": True, "SSEType": "KMS"},
            )
            dynamodb.update_continuous_backups(
                TableName=f"orders-{index}",
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            count("dynamodb tables")

        sns = client("sns", region)
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
        sns.create_topic(Name="unused-topic")
        cloudwatch = client("cloudwatch", region)
        for index in range(scale):
            cloudwatch.put_metric_alarm(
                AlarmName=f"api-5xx-{index}",
                MetricName="HTTPCode_Target_5XX_Count",
                Namespace="AWS/ApplicationELB",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=5,
                Threshold=10,
                ComparisonOperator="GreaterThanThreshold",
                ActionsEnabled=True,
                AlarmActions=[topic],
            )
            count("alarms")
        if number == 0:
            cloudwatch.put_dashboard(
                DashboardName="payments",
                DashboardBody=json.dumps(
                    {
                        "widgets": [
                            {
                                "type": "metric",
                                "properties": {
                                    "metrics": [["AWS/EC2", "CPUUtilization"]],
                                    "region": region,
                                },
                            }
                        ]
                    }
                ),
            )
        client("logs", region).create_log_group(logGroupName="/payments/api")
        secrets = client("secretsmanager", region)
        secrets.create_secret(
            Name="payments/db", SecretString=json.dumps({"password": "demo-only"})
        )

        if number == 0:
            trail_bucket = f"demo-trail-{account_id}"
            s3.create_bucket(Bucket=trail_bucket)
            s3.put_public_access_block(
                Bucket=trail_bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            cloudtrail = client("cloudtrail", region)
            cloudtrail.create_trail(
                Name="org-trail",
                S3BucketName=trail_bucket,
                IsMultiRegionTrail=True,
                EnableLogFileValidation=True,
                KmsKeyId=rotated,
            )
            cloudtrail.start_logging(Name="org-trail")
    _seed_operations(client, regions, scale, count, account_id=account_id, bucket=bucket)
    return counts


def _seed_operations(client, regions, scale: int, count, *, account_id: str, bucket) -> None:
    """What the cost, performance, compliance and delivery probes read: a budget, a password
    policy, lifecycle rules, log retention, instances, a NAT gateway with one of its two
    gateway endpoints, a staging Auto Scaling group with and without schedules, AWS Config,
    a cache and a pipeline — a mix of compliant and not, as real accounts are."""
    client("budgets").create_budget(
        AccountId=account_id,
        Budget={
            "BudgetName": "monthly",
            "BudgetLimit": {"Amount": "5000", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
        NotificationsWithSubscribers=[
            {
                "Notification": {
                    "NotificationType": "ACTUAL",
                    "ComparisonOperator": "GREATER_THAN",
                    "Threshold": 80,
                    "ThresholdType": "PERCENTAGE",
                },
                "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "finops@example.com"}],
            }
        ],
    )
    client("iam").update_account_password_policy(
        MinimumPasswordLength=12, RequireSymbols=True, RequireNumbers=True
    )
    for number, region in enumerate(regions):
        s3 = client("s3", region)
        for index in range(scale):
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket(f"demo-records-{region}-{index}"),
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "archive",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
                        }
                    ]
                },
            )
        logs = client("logs", region)
        if number == 0:
            logs.put_retention_policy(logGroupName="/payments/api", retentionInDays=400)
        for index in range(scale):
            logs.create_log_group(logGroupName=f"/payments/worker-{index}")
            count("log groups")

        ec2 = client("ec2", region)
        vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}])["Vpcs"][0]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
            "Subnets"
        ]
        private = next(s for s in subnets if s["CidrBlock"] == "10.0.2.0/24")["SubnetId"]
        public = next(s for s in subnets if s["CidrBlock"] == "10.0.1.0/24")["SubnetId"]
        ec2.run_instances(
            ImageId="ami-12345678",
            InstanceType="m5.large",
            MinCount=scale,
            MaxCount=scale,
            SubnetId=private,
        )
        count("ec2 instances", scale)
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)
        ec2.create_vpc_endpoint(
            VpcId=vpc["VpcId"],
            ServiceName=f"com.amazonaws.{region}.s3",
            VpcEndpointType="Gateway",
        )

        autoscaling = client("autoscaling", region)
        autoscaling.create_launch_configuration(
            LaunchConfigurationName="staging-web", ImageId="ami-12345678", InstanceType="t3.small"
        )
        for name, scheduled in (("staging-web", True), ("staging-batch", False)):
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchConfigurationName="staging-web",
                MinSize=0,
                MaxSize=2,
                DesiredCapacity=0,
                VPCZoneIdentifier=private,
                Tags=[{"Key": "Environment", "Value": "staging", "PropagateAtLaunch": True}],
            )
            if scheduled:
                for action, size, cron in (("night", 0, "0 20 * * 1-5"), ("day", 2, "0 7 * * 1-5")):
                    autoscaling.put_scheduled_update_group_action(
                        AutoScalingGroupName=name,
                        ScheduledActionName=action,
                        Recurrence=cron,
                        MinSize=size,
                        DesiredCapacity=size,
                    )

        config = client("config", region)
        config.put_configuration_recorder(
            ConfigurationRecorder={
                "name": "default",
                "roleARN": f"arn:aws:iam::{account_id}:role/config",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": number == 0},
            }
        )
        if number == 0:
            config.put_delivery_channel(
                DeliveryChannel={"name": "default", "s3BucketName": f"demo-trail-{account_id}"}
            )
            config.start_configuration_recorder(ConfigurationRecorderName="default")

        if number == 0:
            client("elasticache", region).create_cache_cluster(
                CacheClusterId="sessions",
                Engine="redis",
                CacheNodeType="cache.t3.micro",
                NumCacheNodes=1,
            )
            client("iam").create_role(
                RoleName="codepipeline",
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "codepipeline.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            )
            client("codepipeline", region).create_pipeline(
                pipeline={
                    "name": "payments-api",
                    "roleArn": f"arn:aws:iam::{account_id}:role/codepipeline",
                    "artifactStore": {"type": "S3", "location": f"demo-trail-{account_id}"},
                    "stages": [
                        {
                            "name": "Source",
                            "actions": [
                                {
                                    "name": "Source",
                                    "actionTypeId": {
                                        "category": "Source",
                                        "owner": "AWS",
                                        "provider": "S3",
                                        "version": "1",
                                    },
                                    "configuration": {
                                        "S3Bucket": f"demo-trail-{account_id}",
                                        "S3ObjectKey": "source.zip",
                                    },
                                    "outputArtifacts": [{"name": "src"}],
                                }
                            ],
                        },
                        {
                            "name": "Deploy",
                            "actions": [
                                {
                                    "name": "Deploy",
                                    "actionTypeId": {
                                        "category": "Deploy",
                                        "owner": "AWS",
                                        "provider": "ECS",
                                        "version": "1",
                                    },
                                    "configuration": {"ClusterName": "payments"},
                                    "inputArtifacts": [{"name": "src"}],
                                }
                            ],
                        },
                    ],
                }
            )
