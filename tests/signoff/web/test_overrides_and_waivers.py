"""What a signer approves besides the statuses (issue 17, explanations): Product's page showed
counts only. Every role page now lists the overrides of failing probes (item, who overrode
and when, the probe run's finding, the reason) and the waivers in force (item, who, until
when, reason) on the deployment."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, ItemStatus
from readiness.probe_runs.models import ProbeResult, ProbeRun
from readiness.probe_runs.services import apply_run
from signoff.lifecycle import services
from signoff.signatures.overrides import probe_overrides, waivers_in_force
from signoff.signatures.selectors import item_waivers
from tests.factories import make_deployment
from tests.signoff.web.conftest import client_for, item_of, role_url, text, words
from tests.signoff.web.test_query_counts import queries_of
from tests.signoff_helpers import complete_items, signers_for

pytestmark = pytest.mark.django_db

OVERRIDE_REASON = "ci-admin is a break-glass user kept in a safe"


def probe_run(deployment, verdicts: dict[ChecklistItem, str]) -> ProbeRun:
    """A finished run whose iam.mfa result for each item is its verdict (one region per item:
    a run holds one result per probe and region), applied to the items as a real run's are."""
    run = ProbeRun.objects.create(
        deployment=deployment, state="succeeded", total=len(verdicts), completed=len(verdicts)
    )
    for number, (item, status) in enumerate(verdicts.items()):
        ProbeResult.objects.create(
            run=run,
            item=item,
            probe_key="iam.mfa",
            region="global" if number == 0 else f"eu-west-{number}",
            finished_at=timezone.now(),
            section_title=item.section.title,
            item_title=item.title,
            title="MFA",
            severity="high",
            state="done",
            status=status,
            summary="user ci-admin has no MFA" if status == "fail" else "every user has MFA",
            findings=[{"id": "ci-admin", "status": "fail", "reason": "no MFA device"}]
            if status == "fail"
            else [],
        )
    apply_run(run)
    return run


def decide(item, user, status=ItemStatus.DONE, reason=OVERRIDE_REASON):
    item.refresh_from_db()
    return readiness_services.item_update(
        item=item,
        user=user,
        expected_version=item.version,
        status=status,
        note="",
        evidence_url="",
        na_reason="",
        reason=reason,
    )


@pytest.fixture
def security_items(in_review):
    return list(
        ChecklistItem.objects.filter(section__deployment=in_review, owner_role__slug="security")
        .select_related("section")
        .order_by("section__position", "position")
    )


def test_an_item_marked_done_against_a_failing_probe_is_an_override_with_who_when_and_finding(
    in_review, signers, security_items
):
    overridden, agreed, failed_too, untouched = security_items[:4]
    first = probe_run(in_review, {overridden: "fail", agreed: "pass", failed_too: "fail"})
    assert item_of(in_review, overridden.title).status == ItemStatus.FAILED  # the probe set it
    decide(overridden, signers["security"])
    decide(failed_too, signers["security"], ItemStatus.FAILED, reason="")  # agrees: no override
    decide(untouched, signers["security"], reason="")  # no probe: nothing to override
    # A second run that cannot reach AWS leaves the failing verdict in force.
    second = ProbeRun.objects.create(deployment=in_review, state="succeeded", total=1)
    ProbeResult.objects.create(
        run=second,
        item=overridden,
        probe_key="iam.mfa",
        region="global",
        section_title=overridden.section.title,
        item_title=overridden.title,
        title="MFA",
        severity="high",
        state="done",
        status="error",
        summary="AccessDenied",
    )

    overrides = probe_overrides(in_review)

    assert [override.item.pk for override in overrides] == [overridden.pk]
    override = overrides[0]
    assert override.by.changed_by == signers["security"]
    assert override.by.previous_status == ItemStatus.FAILED
    assert override.reason == OVERRIDE_REASON
    [finding] = override.failing
    assert (finding["probe"], finding["region"], finding["run_id"]) == (
        "iam.mfa",
        "global",
        first.pk,
    )
    assert finding["run_number"] == 1
    assert finding["detail"] == "ci-admin: no MFA device"


def test_no_override_reads_nothing_past_the_items(in_review, django_assert_num_queries):
    complete_items(in_review)
    with django_assert_num_queries(1):
        assert probe_overrides(in_review) == []


def test_waivers_in_force_leave_out_withdrawn_and_expired_ones(in_review, signers, security_items):
    now = timezone.now()
    kept, withdrawn, expiring = security_items[:3]
    waivers = {
        item: services.waiver_grant(
            item=item,
            user=signers["security"],
            reason=f"accepted for {item.title}",
            expires_at=now + datetime.timedelta(days=7),
        )
        for item in (kept, withdrawn, expiring)
    }
    services.waiver_withdraw(
        waiver=waivers[withdrawn], user=signers["security"], reason="fixed after all"
    )
    in_force = waivers_in_force(
        item_waivers(in_review), now=waivers[expiring].expires_at - datetime.timedelta(seconds=1)
    )
    assert in_force == [waivers[kept], waivers[expiring]]
    later = waivers_in_force(item_waivers(in_review), now=now + datetime.timedelta(days=8))
    assert later == []


@pytest.mark.parametrize("role", ["product", "security", "devops"])
def test_every_role_page_lists_the_overrides_and_the_waivers_of_the_deployment(
    in_review, signers, security_items, member, role
):
    overridden, waived = security_items[:2]
    run = probe_run(in_review, {overridden: "fail"})
    decide(overridden, signers["security"])
    waiver = services.waiver_grant(
        item=waived,
        user=signers["security"],
        reason="pen test booked for the 12th",
        expires_at=timezone.now() + datetime.timedelta(days=7),
    )
    overridden.refresh_from_db()
    change = overridden.changes.get(version=overridden.version)

    page = text(client_for(member).get(role_url(in_review, role)))

    row = words(page.split(f'id="override-{overridden.pk}"')[1].split("</tr>")[0])
    assert f"{overridden.title} {overridden.section.title} · owned by Security" in row
    assert "Done" in row
    assert f"Security Signer, {change.changed_at:%Y-%m-%d %H:%M} UTC" in row
    today = timezone.now().date().isoformat()
    assert f"iam.mfa [global], probe run 1 on {today}: ci-admin: no MFA device" in row
    assert OVERRIDE_REASON in row
    assert reverse("probe_run_detail", args=[in_review.pk, run.pk]) in page
    row = words(page.split(f'id="waiver-{waiver.pk}"')[1].split("</tr>")[0])
    assert waived.title in row and "Security Signer" in row
    assert f"{waiver.expires_at:%Y-%m-%d %H:%M} UTC" in row
    assert "pen test booked for the 12th" in row


def test_a_role_page_without_overrides_or_waivers_says_none(in_review, member):
    page = words(text(client_for(member).get(role_url(in_review, "product"))))
    assert "Overrides of failing probes None: no person marked an item complete" in page
    assert "Waivers in force None on this deployment." in page


def overrides_on_own_team(count: int):
    """A deployment in review of a team of its own with `count` Security items overridden
    against a failing probe and `count` waived; its Product signer."""
    from tests.factories import TeamFactory

    team = TeamFactory(name=f"Overrides {count}", slug=f"overrides-{count}")
    signers = signers_for(team)
    deployment = make_deployment(user=signers["tech-lead"], team=team, service=f"o{count}")
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    items = list(
        ChecklistItem.objects.filter(section__deployment=deployment, owner_role__slug="security")
        .select_related("section")
        .order_by("section__position", "position")[: 2 * count]
    )
    probe_run(deployment, {item: "fail" for item in items[:count]})
    for item in items[:count]:
        decide(item, signers["security"])
    for item in items[count:]:
        services.waiver_grant(
            item=item,
            user=signers["security"],
            reason="accepted",
            expires_at=timezone.now() + datetime.timedelta(days=7),
        )
    return deployment, signers["product"]


def test_the_role_page_reads_as_many_queries_for_1_override_and_waiver_as_for_6():
    counts = {}
    for count in (1, 6):
        deployment, product = overrides_on_own_team(count)
        client = client_for(product)
        url = role_url(deployment, "product")
        client.get(url)  # warm the session
        counts[count], response = queries_of(lambda: client.get(url))  # noqa: B023
        assert len(response.context["overrides"]) == count
        assert len(response.context["waivers_in_force"]) == count
    assert counts[1] == counts[6]
