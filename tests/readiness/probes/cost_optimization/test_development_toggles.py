import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, registry
from tests.conftest import REGION
from tests.readiness.probes.cost_optimization.helpers import by_id, run


def _group(aws, name: str, environment: str | None, *schedule, key="Environment", **sizes):
    autoscaling = aws.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId="ami-12345678", InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        AvailabilityZones=[f"{REGION}a"],
        Tags=[{"Key": key, "Value": environment, "PropagateAtLaunch": True}]
        if environment is not None
        else [],
        **({"MinSize": 0, "MaxSize": 2} | sizes),
    )
    for action, recurrence, size in schedule:
        autoscaling.put_scheduled_update_group_action(
            AutoScalingGroupName=name,
            # Unique across groups: moto keys scheduled actions by name alone.
            ScheduledActionName=f"{name}-{action}",
            **({"Recurrence": recurrence} if recurrence else {"StartTime": "2030-01-01T00:00:00Z"}),
            MinSize=size,
            DesiredCapacity=size,
        )
    return name


NIGHT = ("night", "0 20 * * 1-5", 0)

MORNING = ("morning", "0 7 * * 1-5", 2)


def test_dev_toggles_pass_for_groups_that_sleep_on_a_schedule(aws, make_context):
    web = _group(aws, "staging-web", "Staging", NIGHT, MORNING)
    parked = _group(aws, "dev-old", "dev", MaxSize=0)
    result = run("cost.dev_toggles", make_context())
    assert result.status == Status.PASS, result
    assert by_id(result)[web].reason == (
        "Environment=Staging: scales to zero at '0 20 * * 1-5' UTC and back up at '0 7 * * 1-5' UTC"
    )
    assert "parked at zero" in by_id(result)[parked].reason


def test_dev_toggles_fail_groups_that_never_sleep_or_never_wake(aws, make_context):
    batch = _group(aws, "dev-batch", "dev")
    qa = _group(aws, "qa-api", "qa", NIGHT)
    one_off = _group(aws, "test-web", "test", ("night", None, 0), MORNING)
    result = run("cost.dev_toggles", make_context())
    assert result.status == Status.FAIL
    found = by_id(result)
    assert all(finding.status == Status.FAIL for finding in found.values())
    assert "runs around the clock" in found[batch].reason
    assert "no recurring action scales it back up" in found[qa].reason
    assert "1 one-off scheduled actions do not repeat" in found[one_off].reason
    assert result.facts["non_production_groups"] == 3


def test_dev_toggles_ignore_production_and_untagged_groups(aws, make_context):
    _group(aws, "prod-web", "PROD")  # production values compare case-insensitively
    _group(aws, "live-api", "live")
    _group(aws, "untagged", None)
    _group(aws, "blank", " ")
    result = run("cost.dev_toggles", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert (
        result.summary
        == f"No Auto Scaling group tagged Environment with a non-production value in {REGION}"
    )
    assert result.facts["auto_scaling_groups"] == 4
    assert result.facts["non_production_groups"] == 0


def test_dev_toggles_use_the_tag_key_and_production_values_from_settings(aws, make_context):
    _group(aws, "staging-web", "staging", key="stage")
    _group(aws, "dev-web", "dev", key="Environment")
    context = make_context(environment_tag_key="Stage", production_environments=("staging",))
    assert run("cost.dev_toggles", context).status == Status.NOT_APPLICABLE
    result = run("cost.dev_toggles", make_context(environment_tag_key="Stage"))
    assert result.status == Status.FAIL
    assert set(by_id(result)) == {"staging-web"}  # tag keys compare case-insensitively
    assert result.facts["environment_tag_key"] == "Stage"


@pytest.mark.parametrize(
    ("key", "service", "operation", "expected"),
    [
        ("cost.dev_toggles", "autoscaling", "describe_auto_scaling_groups", "autoscaling:Desc"),
    ],
)
def test_refused_calls_name_the_iam_action(aws, make_context, key, service, operation, expected):
    context = make_context("global" if registry()[key].scope == "global" else REGION)
    with Stubber(context.client(service)) as stubber:
        stubber.add_client_error(operation, "AccessDeniedException", http_status_code=403)
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(f"Access denied: the probe needs {expected}")
