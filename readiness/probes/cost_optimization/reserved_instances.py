"""Cost Optimization / Reserved Instances: Reserved Instances and Savings Plans cover the
steady-state usage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from readiness.probes.base import ProbeContext, ProbeResult, Scope, Severity, Status, probe

SECTION = "Cost Optimization"


def _ce_pages(call, key: str, token_key: str, **params) -> Iterator[dict]:
    """Every element of `key` for a Cost Explorer operation without a botocore paginator."""
    token = None
    while True:
        page = call(**params, **({token_key: token} if token else {}))
        yield from page.get(key, [])
        token = page.get(token_key)
        if not token:
            return


def _amount(value) -> float:
    return float(value or 0)


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole > 0 else None


@probe(
    key="cost.commitments",
    section=SECTION,
    item="Reserved Instances",
    title=(
        "Reserved Instances (EC2) or Savings Plans cover the target share of eligible usage "
        "over the commitment window"
    ),
    actions=("ce:GetReservationCoverage", "ce:GetSavingsPlansCoverage"),
    scope=Scope.GLOBAL,
    severity=Severity.LOW,
    remediation=(
        "Review the steady-state baseline in Billing and Cost Management > Savings Plans > "
        "Recommendations (or Reservations > Recommendations) and purchase a Compute Savings "
        "Plan or Reserved Instances for it (`aws ce get-savings-plans-purchase-recommendation "
        "--savings-plans-type COMPUTE_SP --term-in-years ONE_YEAR --payment-option "
        "NO_UPFRONT --lookback-period-in-days THIRTY_DAYS`); track coverage in Cost "
        "Explorer > Savings Plans coverage / RI coverage."
    ),
)
def commitments(context: ProbeContext) -> ProbeResult:
    target = context.settings.commitment_coverage_target_percent
    days = context.settings.commitment_window_days
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days)
    window = {"Start": start.isoformat(), "End": end.isoformat()}  # End is exclusive
    facts = {
        "coverage_target_percent": target,
        "window_days": days,
        "window": f"{window['Start']}..{window['End']}",
    }
    ce = context.client("ce")
    # Each Cost Explorer request is billed: one aggregate query per kind, monthly periods.
    try:
        reservation_periods = list(
            _ce_pages(
                ce.get_reservation_coverage,
                "CoveragesByTime",
                "NextPageToken",
                TimePeriod=window,
                Granularity="MONTHLY",
            )
        )
        plan_periods = list(
            _ce_pages(
                ce.get_savings_plans_coverage,
                "SavingsPlansCoverages",
                "NextToken",
                TimePeriod=window,
                Granularity="MONTHLY",
            )
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "DataUnavailableException":
            raise
        return ProbeResult(
            Status.NOT_APPLICABLE,
            f"Cost Explorer has no usage data for the last {days} days yet (a new account, or "
            "Cost Explorer enabled less than a day ago): coverage cannot be evaluated",
            facts=facts,
        )
    # Without GroupBy, each period's Total is the whole account for that period; CE defaults
    # reservation coverage to EC2 when no SERVICE filter is given.
    hours = [period.get("Total", {}).get("CoverageHours", {}) for period in reservation_periods]
    running = sum(_amount(h.get("TotalRunningHours")) for h in hours)
    reserved = sum(_amount(h.get("ReservedHours")) for h in hours)
    spend = [period.get("Coverage", {}) for period in plan_periods]
    eligible = sum(_amount(s.get("TotalCost")) for s in spend)
    covered = sum(_amount(s.get("SpendCoveredBySavingsPlans")) for s in spend)
    ri_percent, sp_percent = _percent(reserved, running), _percent(covered, eligible)
    facts |= {
        "reservation_coverage_percent": ri_percent,
        "reservation_running_hours": round(running, 1),
        "savings_plans_coverage_percent": sp_percent,
        "savings_plans_eligible_spend": round(eligible, 2),
    }
    if ri_percent is None and sp_percent is None:
        return ProbeResult(
            Status.NOT_APPLICABLE,
            f"No usage eligible for Reserved Instances (EC2) or Savings Plans in the last "
            f"{days} days",
            facts=facts,
        )
    figures = []
    if ri_percent is not None:
        figures.append(
            f"Reserved Instances cover {ri_percent:g}% of {running:,.0f} EC2 running hours"
        )
    if sp_percent is not None:
        figures.append(f"Savings Plans cover {sp_percent:g}% of {eligible:,.2f} eligible spend")
    best = max(p for p in (ri_percent, sp_percent) if p is not None)
    facts["best_coverage_percent"] = best
    detail = "; ".join(figures) + f" (last {days} days, target {target:g}%)"
    if best >= target:
        return ProbeResult(
            Status.PASS, f"Commitment coverage meets the target: {detail}", (), facts
        )
    return ProbeResult(Status.WARN, f"Commitment coverage below the target: {detail}", (), facts)
