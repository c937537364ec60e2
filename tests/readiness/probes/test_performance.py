import datetime

from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry


def run(key, context):
    return execute(registry()[key], context).result


def by_id(result):
    return {f.resource.split(" ")[0]: f for f in result.findings}


def _instances(aws, count=1):
    return [
        i["InstanceId"]
        for i in aws.client("ec2").run_instances(
            ImageId="ami-12345678", MinCount=count, MaxCount=count, InstanceType="m5.large"
        )["Instances"]
    ]


def _cpu(aws, instance, values):
    now = datetime.datetime.now(datetime.UTC)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "InstanceId", "Value": instance}],
                "Timestamp": now - datetime.timedelta(hours=n + 1),
                "Value": value,
                "Unit": "Percent",
            }
            for n, value in enumerate(values)
        ],
    )


def test_right_sizing_judges_cpu_bands_from_cloudwatch(aws, make_context):
    idle, busy, fine, unmeasured = _instances(aws, 4)
    _cpu(aws, idle, [2, 3, 4])
    _cpu(aws, busy, [91, 95, 88])
    _cpu(aws, fine, [30, 55, 70])
    for key in ("performance.right_sizing", "cost.right_sizing"):
        result = run(key, make_context())
        found = by_id(result)
        assert result.status == Status.FAIL, result
        assert result.facts["source"] == "cloudwatch"
        assert found[idle].status == Status.WARN and "over-provisioned" in found[idle].reason
        assert found[busy].status == Status.FAIL and "under-provisioned" in found[busy].reason
        assert found[fine].status == Status.PASS
        assert "no CPU datapoints" in found[unmeasured].reason


def test_right_sizing_bands_are_settings(aws, make_context):
    (instance,) = _instances(aws)
    _cpu(aws, instance, [20, 25])
    assert run("performance.right_sizing", make_context()).status == Status.PASS
    strict = make_context(cpu_low_percent=30)
    assert run("performance.right_sizing", strict).status == Status.WARN


def test_right_sizing_prefers_compute_optimizer(aws, make_context):
    (instance,) = _instances(aws)
    context = make_context()
    with Stubber(context.client("compute-optimizer")) as stubber:
        stubber.add_response(
            "get_ec2_instance_recommendations",
            {
                "instanceRecommendations": [
                    {
                        "instanceArn": f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}",
                        "finding": "Overprovisioned",
                        "recommendationOptions": [{"instanceType": "m5.medium"}],
                    }
                ]
            },
        )
        result = run("performance.right_sizing", context)
    assert result.facts["source"] == "compute-optimizer"
    assert result.findings[0].reason == "Compute Optimizer: over-provisioned, consider m5.medium"


def test_cache_passes_with_a_cluster_and_warns_compute_without_one(aws, make_context):
    assert run("performance.cache", make_context()).status == Status.NOT_APPLICABLE
    _instances(aws)
    result = run("performance.cache", make_context())
    assert result.status == Status.WARN and "no cache" in result.summary
    aws.client("elasticache").create_cache_cluster(
        CacheClusterId="sessions", Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    result = run("performance.cache", make_context())
    assert result.status == Status.PASS and result.findings[0].resource == "sessions"


def test_apigw_stage_cache(aws, make_context):
    assert run("performance.apigw_cache", make_context()).status == Status.NOT_APPLICABLE
    apigateway = aws.client("apigateway")
    api = apigateway.create_rest_api(name="orders")["id"]
    root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
    apigateway.put_method(
        restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE"
    )
    apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    deployment = apigateway.create_deployment(restApiId=api)["id"]
    apigateway.create_stage(restApiId=api, stageName="plain", deploymentId=deployment)
    apigateway.create_stage(
        restApiId=api,
        stageName="cached",
        deploymentId=deployment,
        cacheClusterEnabled=True,
        cacheClusterSize="0.5",
    )
    result = run("performance.apigw_cache", make_context())
    found = {f.resource: f for f in result.findings}
    assert result.status == Status.WARN
    assert found["orders/cached"].status == Status.PASS
    assert found["orders/plain"].status == Status.WARN


def _distribution(aws, *, policy="redirect-to-https", logging=True, acl="arn:aws:wafv2:acl"):
    config = {
        "CallerReference": f"ref-{policy}-{logging}-{bool(acl)}",
        "Comment": "assets",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "s3",
                    "DomainName": "assets.s3.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "s3",
            "ViewerProtocolPolicy": policy,
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
        "Logging": {
            "Enabled": logging,
            "IncludeCookies": False,
            "Bucket": "logs.s3.amazonaws.com" if logging else "",
            "Prefix": "",
        },
    }
    if acl:
        config["WebACLId"] = acl
    return aws.client("cloudfront").create_distribution(DistributionConfig=config)["Distribution"][
        "Id"
    ]


def test_cloudfront_https_logging_and_waf(aws, make_context):
    assert run("performance.cloudfront", make_context()).status == Status.NOT_APPLICABLE
    good = _distribution(aws)
    bad = _distribution(aws, policy="allow-all", logging=False, acl="")
    result = run("performance.cloudfront", make_context())
    found = by_id(result)
    assert result.status == Status.FAIL
    assert found[good].status == Status.PASS, found[good]
    assert found[bad].reason == "1 behavior(s) allow plain HTTP; no access logging; no web ACL"
