from datetime import date

from botocore.stub import ANY, Stubber

from readiness.probes.base import Status
from tests.readiness.probes.cost_optimization.helpers import run


def _reservation_page(reserved: float, running: float, token: str | None = None) -> dict:
    page = {
        "CoveragesByTime": [
            {
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
                "Total": {
                    "CoverageHours": {
                        "ReservedHours": str(reserved),
                        "OnDemandHours": str(running - reserved),
                        "TotalRunningHours": str(running),
                        "CoverageHoursPercentage": str(100 * reserved / running if running else 0),
                    }
                },
            }
        ]
    }
    if token:
        page["NextPageToken"] = token
    return page


def _plans_page(covered: float, on_demand: float, token: str | None = None) -> dict:
    page = {
        "SavingsPlansCoverages": [
            {
                "Coverage": {
                    "SpendCoveredBySavingsPlans": str(covered),
                    "OnDemandCost": str(on_demand),
                    "TotalCost": str(covered + on_demand),
                    "CoveragePercentage": "0",
                },
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
            }
        ]
    }
    if token:
        page["NextToken"] = token
    return page


def _coverage(context, reservation_pages: list[dict], plan_pages: list[dict]) -> Stubber:
    # moto has no reservation or Savings Plans coverage: answer as AWS does.
    stubber = Stubber(context.client("ce"))
    expected = {"TimePeriod": ANY, "Granularity": "MONTHLY"}
    for number, page in enumerate(reservation_pages):
        token = {"NextPageToken": reservation_pages[number - 1]["NextPageToken"]} if number else {}
        stubber.add_response("get_reservation_coverage", page, {**expected, **token})
    for number, page in enumerate(plan_pages):
        token = {"NextToken": plan_pages[number - 1]["NextToken"]} if number else {}
        stubber.add_response("get_savings_plans_coverage", page, {**expected, **token})
    return stubber


def test_commitments_warn_below_the_target_with_both_figures(aws, make_context):
    context = make_context("global")
    with _coverage(context, [_reservation_page(300, 1000)], [_plans_page(400, 600)]):
        result = run("cost.commitments", context)
    assert result.status == Status.WARN, result
    assert result.summary == (
        "Commitment coverage below the target: Reserved Instances cover 30% of 1,000 EC2 "
        "running hours; Savings Plans cover 40% of 1,000.00 eligible spend (last 30 days, "
        "target 70%)"
    )
    assert result.facts["reservation_coverage_percent"] == 30.0
    assert result.facts["savings_plans_coverage_percent"] == 40.0
    assert result.facts["best_coverage_percent"] == 40.0
    assert result.facts["coverage_target_percent"] == 70.0
    start, end = (date.fromisoformat(d) for d in result.facts["window"].split(".."))
    assert (end - start).days == 30


def test_commitments_pass_on_the_better_figure_summed_over_pages(aws, make_context):
    context = make_context("global")
    reservations = [_reservation_page(0, 500, token="r2"), _reservation_page(0, 500)]
    plans = [_plans_page(300, 100, token="p2"), _plans_page(500, 100)]
    with _coverage(context, reservations, plans):
        result = run("cost.commitments", context)
    assert result.status == Status.PASS, result
    assert result.facts["reservation_coverage_percent"] == 0.0
    assert result.facts["savings_plans_coverage_percent"] == 80.0
    assert result.facts["savings_plans_eligible_spend"] == 1000.0
    assert result.summary.startswith("Commitment coverage meets the target")


def test_commitments_use_the_target_and_window_from_settings(aws, make_context):
    context = make_context(
        "global", commitment_coverage_target_percent=25, commitment_window_days=90
    )
    with _coverage(context, [_reservation_page(300, 1000)], [_plans_page(0, 0)]):
        result = run("cost.commitments", context)
    assert result.status == Status.PASS, result
    assert result.facts["savings_plans_coverage_percent"] is None  # no eligible spend
    assert "Savings Plans" not in result.summary
    assert result.summary.endswith("(last 90 days, target 25%)")
    start, end = (date.fromisoformat(d) for d in result.facts["window"].split(".."))
    assert (end - start).days == 90


def test_commitments_not_applicable_without_eligible_usage(aws, make_context):
    context = make_context("global")
    with _coverage(context, [_reservation_page(0, 0)], [_plans_page(0, 0)]):
        result = run("cost.commitments", context)
    assert result.status == Status.NOT_APPLICABLE
    assert result.summary.startswith("No usage eligible for Reserved Instances")


def test_commitments_not_applicable_while_cost_explorer_has_no_data(aws, make_context):
    context = make_context("global")
    with Stubber(context.client("ce")) as stubber:
        stubber.add_client_error(
            "get_reservation_coverage",
            service_error_code="DataUnavailableException",
            service_message="Data is not available. Please try to adjust the time period.",
        )
        result = run("cost.commitments", context)
    assert result.status == Status.NOT_APPLICABLE
    assert "new account" in result.summary
    assert result.facts["window_days"] == 30


def test_commitments_other_errors_are_errors(aws, make_context):
    context = make_context("global")
    with Stubber(context.client("ce")) as stubber:
        stubber.add_client_error(
            "get_reservation_coverage", "AccessDeniedException", http_status_code=400
        )
        result = run("cost.commitments", context)
    assert result.status == Status.ERROR
    assert result.summary == "Access denied: the probe needs ce:GetReservationCoverage"
