from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.conftest import REGION
from tests.readiness.probes.cost_optimization.helpers import by_id, run

OTHER_REGION = "eu-west-1"


def _bucket(aws, name: str, *rules: dict, region: str = REGION) -> str:
    s3 = aws.client("s3", region_name=region)
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": location} if location else {}))
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": list(rules)}
        )
    return name


def _rule(rule_id: str, status: str = "Enabled", prefix: str = "", **actions) -> dict:
    return {"ID": rule_id, "Status": status, "Filter": {"Prefix": prefix}, **actions}


def test_lifecycle_passes_transitions_and_short_lived_data(aws, make_context):
    archive = _bucket(
        aws,
        "archive",
        _rule("cold", prefix="logs/", Transitions=[{"Days": 90, "StorageClass": "GLACIER"}]),
    )
    scratch = _bucket(aws, "scratch", _rule("purge", Expiration={"Days": 7}))
    result = run("cost.s3_lifecycle", make_context())
    assert result.status == Status.PASS, result
    assert (
        by_id(result)[archive].reason
        == "rule cold moves objects under logs/ to GLACIER after 90 days"
    )
    assert "deletes objects after 7 days" in by_id(result)[scratch].reason
    assert result.facts == {"buckets": 2, "with_transitions": 2, "min_transition_days": 30}


def test_lifecycle_fails_buckets_without_enabled_transitions_and_warns_partial_rules(
    aws, make_context
):
    hot = _bucket(aws, "hot")
    paused = _bucket(
        aws,
        "paused",
        _rule("cold", status="Disabled", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
    )
    uploads = _bucket(
        aws, "uploads", _rule("abort", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7})
    )
    kept = _bucket(aws, "kept-a-year", _rule("year", Expiration={"Days": 365}))
    versions = _bucket(
        aws,
        "versions",
        _rule(
            "old",
            NoncurrentVersionTransitions=[{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
        ),
    )
    result = run("cost.s3_lifecycle", make_context())
    assert result.status == Status.FAIL
    found = by_id(result)
    assert {name: found[name].status for name in found} == {
        hot: Status.FAIL,
        paused: Status.FAIL,
        uploads: Status.FAIL,
        kept: Status.WARN,
        versions: Status.WARN,
    }
    assert found[hot].reason == "no lifecycle configuration: objects never move"
    assert found[paused].reason == "all 1 lifecycle rules are disabled"
    assert "only clean up incomplete uploads" in found[uploads].reason
    assert "never moving them to a cheaper class" in found[kept].reason
    assert "only noncurrent versions" in found[versions].reason
    assert result.summary == "3 of 5 S3 buckets have no enabled lifecycle transition"


def test_lifecycle_judges_only_the_buckets_of_the_region(aws, make_context):
    _bucket(aws, "elsewhere", region=OTHER_REGION)
    assert run("cost.s3_lifecycle", make_context()).status == Status.NOT_APPLICABLE
    result = run("cost.s3_lifecycle", make_context(OTHER_REGION))
    assert result.status == Status.FAIL
    assert set(by_id(result)) == {"elsewhere"}


def test_lifecycle_accepts_an_intelligent_tiering_archive_configuration(aws, make_context):
    context = make_context()
    client = context.client("s3")
    # moto has no Intelligent-Tiering configurations: answer S3 as AWS would.
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_buckets",
            {"Buckets": [{"Name": "media", "BucketRegion": REGION}]},
            {"BucketRegion": REGION},
        )
        stubber.add_client_error(
            "get_bucket_lifecycle_configuration",
            service_error_code="NoSuchLifecycleConfiguration",
            http_status_code=404,
            expected_params={"Bucket": "media"},
        )
        stubber.add_response(
            "list_bucket_intelligent_tiering_configurations",
            {
                "IsTruncated": False,
                "IntelligentTieringConfigurationList": [
                    {
                        "Id": "archive",
                        "Status": "Enabled",
                        "Tierings": [{"Days": 90, "AccessTier": "ARCHIVE_ACCESS"}],
                    }
                ],
            },
            {"Bucket": "media"},
        )
        result = run("cost.s3_lifecycle", context)
    assert result.status == Status.PASS, result
    assert result.findings[0].reason.startswith(
        "S3 Intelligent-Tiering archive configuration archive"
    )


def test_lifecycle_not_applicable_without_buckets(aws, make_context):
    result = run("cost.s3_lifecycle", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert result.summary == f"No S3 buckets in {REGION}"
