from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def run(context):
    return execute(registry()["cloudtrail.trail"], context).result


def _bucket(aws, name: str, region: str = "us-east-1", block: dict | None = BLOCK_ALL) -> str:
    s3 = aws.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    return name


def _good_trail(aws, name: str = "org-trail", region: str = "us-east-1") -> str:
    key = aws.client("kms", region_name=region).create_key()["KeyMetadata"]["Arn"]
    cloudtrail = aws.client("cloudtrail", region_name=region)
    arn = cloudtrail.create_trail(
        Name=name,
        S3BucketName=_bucket(aws, f"{name}-logs", region),
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        KmsKeyId=key,
    )["TrailARN"]
    cloudtrail.start_logging(Name=arn)
    return arn


def test_passes_with_a_complete_trail_and_warns_about_a_single_region_extra_one(aws, make_context):
    good = _good_trail(aws)
    key = aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    # Validated and encrypted, but one region and not logging: an extra trail, no gap.
    extra = aws.client("cloudtrail").create_trail(
        Name="scratch",
        S3BucketName=_bucket(aws, "scratch-logs", block=None),
        EnableLogFileValidation=True,
        KmsKeyId=key,
    )["TrailARN"]
    result = run(make_context("global"))
    assert result.status == Status.PASS, result
    assert result.facts["best_trail"] == good
    by_arn = {f.resource: f for f in result.findings}
    assert by_arn[good].status == Status.PASS
    assert by_arn[extra].status == Status.WARN


def test_an_extra_trail_without_validation_or_encryption_fails_as_security_hub_judges_it(
    aws, make_context
):
    # CloudTrail.2 (encryption) and CloudTrail.4 (log file validation) judge every trail.
    _good_trail(aws)
    extra = aws.client("cloudtrail").create_trail(
        Name="scratch", S3BucketName=_bucket(aws, "scratch-logs")
    )["TrailARN"]
    result = run(make_context("global"))
    assert result.status == Status.FAIL, result
    assert "scratch lack log file validation or KMS encryption" in result.summary
    by_arn = {f.resource: f for f in result.findings}
    assert by_arn[extra].status == Status.FAIL
    assert "CloudTrail.2, CloudTrail.4" in by_arn[extra].reason


def test_sees_a_multi_region_trail_homed_in_another_region(aws, make_context):
    good = _good_trail(aws, region="eu-west-1")
    result = run(make_context("global"))
    assert result.status == Status.PASS, result
    assert result.facts["best_trail"] == good


def test_fails_listing_what_the_closest_trail_misses(aws, make_context):
    cloudtrail = aws.client("cloudtrail")
    arn = cloudtrail.create_trail(
        Name="partial",
        S3BucketName=_bucket(aws, "partial-logs", block={**BLOCK_ALL, "BlockPublicPolicy": False}),
        IsMultiRegionTrail=True,
    )["TrailARN"]
    cloudtrail.start_logging(Name=arn)
    # Data events only: management events are switched off.
    cloudtrail.put_event_selectors(
        TrailName=arn,
        AdvancedEventSelectors=[
            {
                "Name": "s3-data",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Data"]},
                    {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                ],
            }
        ],
    )
    result = run(make_context("global"))
    assert result.status == Status.FAIL
    assert [f.resource for f in result.findings] == [arn]
    assert result.findings[0].reason == (
        "missing: log file validation, KMS encryption, management events, "
        "bucket blocks public access"
    )
    assert "the closest, partial, is missing: log file validation" in result.summary


def test_no_trail_fails_rather_than_not_applicable(aws, make_context):
    result = run(make_context("global"))
    assert result.status == Status.FAIL
    assert result.facts["trails"] == 0


def test_unreadable_log_bucket_is_an_error_not_a_pass(aws, make_context):
    _good_trail(aws)
    context = make_context("global")
    with Stubber(context.client("s3")) as stubber:
        stubber.add_client_error("get_public_access_block", service_error_code="AccessDenied")
        result = run(context)
    assert result.status == Status.ERROR
    assert result.summary.startswith("Access denied: the probe needs s3:GetBucketPublicAccessBlock")
