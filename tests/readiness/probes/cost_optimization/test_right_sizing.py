from readiness.probes.base import Status
from tests.readiness.probes.cost_optimization.helpers import run


def test_right_sizing_not_applicable_without_instances(aws, make_context):
    assert run("cost.right_sizing", make_context()).status == Status.NOT_APPLICABLE
