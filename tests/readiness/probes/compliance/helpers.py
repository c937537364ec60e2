"""What the tests of the Compliance probes share."""

from readiness.probes.base import execute, registry


def run(key, context):
    return execute(registry()[key], context).result


def by_id(result):
    return {f.resource: f for f in result.findings}


def _trail(aws, bucket, *, object_lock=False):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=object_lock)
    aws.client("cloudtrail").create_trail(Name=f"{bucket}-trail", S3BucketName=bucket)
    return s3
