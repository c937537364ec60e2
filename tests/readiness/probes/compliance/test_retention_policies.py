from readiness.probes.base import Status
from tests.readiness.probes.compliance.helpers import _trail, by_id, run


def test_log_retention(aws, make_context):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/forever")
    logs.create_log_group(logGroupName="/short")
    logs.put_retention_policy(logGroupName="/short", retentionInDays=30)
    logs.create_log_group(logGroupName="/kept")
    logs.put_retention_policy(logGroupName="/kept", retentionInDays=400)
    result = run("compliance.log_retention", make_context())
    found = by_id(result)
    assert found["/forever"].reason == "no retention set: never expires"
    assert found["/short"].status == Status.FAIL and found["/kept"].status == Status.PASS
    lenient = run("compliance.log_retention", make_context(log_retention_min_days=30))
    assert by_id(lenient)["/short"].status == Status.PASS


def test_backup_lifecycle(aws, make_context):
    assert run("compliance.backup_lifecycle", make_context()).status == Status.NOT_APPLICABLE
    backup = aws.client("backup")
    backup.create_backup_plan(
        BackupPlan={
            "BackupPlanName": "daily",
            "Rules": [
                {
                    "RuleName": "expiring",
                    "TargetBackupVaultName": "Default",
                    "ScheduleExpression": "cron(0 5 * * ? *)",
                    "Lifecycle": {"DeleteAfterDays": 35},
                },
                {
                    "RuleName": "forever",
                    "TargetBackupVaultName": "Default",
                    "ScheduleExpression": "cron(0 6 * * ? *)",
                },
            ],
        }
    )
    result = run("compliance.backup_lifecycle", make_context())
    found = by_id(result)
    assert found["daily/expiring"].status == Status.PASS
    assert found["daily/forever"].reason == "recovery points are kept forever"


def test_trail_bucket_retention(aws, make_context):
    s3 = _trail(aws, "trail-locked", object_lock=True)
    s3.put_bucket_lifecycle_configuration(
        Bucket="trail-locked",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 2555},
                }
            ]
        },
    )
    _trail(aws, "trail-plain")
    result = run("compliance.trail_bucket_retention", make_context())
    found = by_id(result)
    assert found["trail-locked"].status == Status.PASS, found["trail-locked"]
    assert found["trail-plain"].reason == "Object Lock off; no lifecycle rule"
