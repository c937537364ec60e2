"""One status with one reason for several items (the checklist page's bulk change): audited
per item, ownership enforced per item, all of them or none."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_chain
from readiness.checklists import selectors, services
from readiness.checklists.models import (
    ChecklistItem,
    DecisionSource,
    Deployment,
    DeploymentState,
    ItemChange,
    ItemStatus,
)
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import give_role

pytestmark = pytest.mark.django_db


def items(deployment, *titles) -> list[ChecklistItem]:
    found = {
        item.title: item
        for item in ChecklistItem.objects.filter(section__deployment=deployment, title__in=titles)
    }
    return [found[title] for title in titles]


def bulk(deployment, user, chosen, status=ItemStatus.DONE, reason="verified in the review"):
    return services.items_set_status(
        deployment=deployment,
        item_ids=[item.pk for item in chosen],
        user=user,
        status=status,
        reason=reason,
    )


def untouched(deployment) -> tuple:
    deployment.refresh_from_db()
    return (
        list(
            ChecklistItem.objects.filter(section__deployment=deployment)
            .order_by("pk")
            .values_list("status", "version", "status_reason")
        ),
        ItemChange.objects.count(),
        AuditEvent.objects.filter(action="item.updated").count(),
        deployment.items_done,
    )


@pytest.fixture
def tech_lead(team):
    user = UserFactory(username="tia", first_name="Tia", last_name="Lead")
    give_role(user, team, "tech-lead")
    return user


def test_bulk_change_records_one_change_and_one_audit_event_per_item(deployment, member):
    chosen = items(deployment, "IAM Policies", "MFA", "Health Checks")
    result = bulk(deployment, member, chosen, reason="checked in the quarterly review")
    assert [item.pk for item in result.changed] == sorted(item.pk for item in chosen)
    for item in chosen:
        item.refresh_from_db()
        assert (item.status, item.version, item.updated_by) == (ItemStatus.DONE, 2, member)
        assert (item.source, item.status_reason) == (
            DecisionSource.PERSON,
            "checked in the quarterly review",
        )
        change = ItemChange.objects.get(item=item)
        assert (change.version, change.previous_status, change.status, change.changed_by) == (
            2,
            ItemStatus.OPEN,
            ItemStatus.DONE,
            member,
        )
        event = AuditEvent.objects.get(action="item.updated", object_id=str(item.pk))
        assert event.reason == "checked in the quarterly review"
        assert (event.before["status"], event.after["status"]) == ("open", "done")
        assert event.actor_id == member.pk
    assert AuditEvent.objects.filter(action="item.updated").count() == 3
    deployment.refresh_from_db()
    assert deployment.items_done == 3  # the progress counters follow
    assert verify_chain(deployment.pk).ok


def test_not_applicable_takes_the_reason_as_the_items_na_reason(deployment, member):
    chosen = items(deployment, "MFA", "Health Checks")
    bulk(deployment, member, chosen, status=ItemStatus.NOT_APPLICABLE, reason="internal only")
    assert {item.na_reason for item in items(deployment, "MFA", "Health Checks")} == {
        "internal only"
    }


def test_an_item_holding_the_status_already_is_left_alone(deployment, member):
    done, still_open = items(deployment, "MFA", "Health Checks")
    bulk(deployment, member, [done])
    result = bulk(deployment, member, [done, still_open], reason="second pass")
    assert [item.pk for item in result.changed] == [still_open.pk]
    assert [item.pk for item in result.unchanged] == [done.pk]
    assert ItemChange.objects.filter(item=done).count() == 1


def test_one_item_the_user_may_not_change_refuses_the_whole_change(deployment, tech_lead):
    # The Tech Lead owns Architecture items, not Security's MFA.
    chosen = items(deployment, "Load Testing", "MFA")
    assert chosen[0].owner_role.slug == "tech-lead" and chosen[1].owner_role.slug == "security"
    before = untouched(deployment)
    with pytest.raises(PermissionDenied, match="“MFA” is owned by Security"):
        bulk(deployment, tech_lead, chosen)
    assert untouched(deployment) == before


def test_the_refusal_names_every_item_it_refuses(deployment, tech_lead):
    with pytest.raises(PermissionDenied) as refused:
        bulk(deployment, tech_lead, items(deployment, "MFA", "Health Checks", "Load Testing"))
    assert "2 of the items" in str(refused.value)
    assert "“MFA”" in str(refused.value) and "“Health Checks”" in str(refused.value)
    assert "Load Testing" not in str(refused.value)


def test_a_stranger_to_the_team_changes_nothing(deployment):
    olga = UserFactory(username="olga")
    TeamFactory(name="Search", slug="search", members=[olga])
    before = untouched(deployment)
    with pytest.raises(PermissionDenied, match="not a member"):
        bulk(deployment, olga, items(deployment, "Load Testing"))
    assert untouched(deployment) == before


def test_an_item_of_another_deployment_refuses_the_whole_change(deployment, member, team):
    other = make_deployment(user=member, team=team, service="ledger")
    before = untouched(deployment)
    with pytest.raises(ValidationError):
        bulk(deployment, member, [*items(deployment, "MFA"), *items(other, "MFA")])
    assert untouched(deployment) == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_bulk_change_needs_a_reason(deployment, member, reason):
    before = untouched(deployment)
    with pytest.raises(ValidationError):
        bulk(deployment, member, items(deployment, "MFA"), reason=reason)
    assert untouched(deployment) == before


def test_a_closed_record_refuses_a_bulk_change(deployment, member):
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.DEPLOYED)
    before = untouched(deployment)
    with pytest.raises(services.RecordClosed):
        bulk(deployment, member, items(deployment, "MFA"))
    assert untouched(deployment) == before


def test_a_failure_midway_leaves_no_item_changed(deployment, member):
    """All or nothing even past the checks: the second item's history row cannot be written
    (a row already holds its next version), so the first item's change is rolled back too."""
    mfa, health = items(deployment, "MFA", "Health Checks")
    ItemChange.objects.create(
        item=health,
        version=health.version + 1,
        changed_by=member,
        changed_at=timezone.now(),
        previous_status=ItemStatus.OPEN,
        status=ItemStatus.OPEN,
    )
    before = untouched(deployment)
    with pytest.raises(IntegrityError):
        bulk(deployment, member, [mfa, health])
    assert untouched(deployment) == before


def test_overriding_probe_verdicts_in_bulk_marks_the_items_overridden(deployment, member):
    mfa, health = items(deployment, "MFA", "Health Checks")
    for item in (mfa, health):
        services.item_set_by_machine(
            item=item,
            status=ItemStatus.FAILED,
            source=DecisionSource.PROBE,
            reason="probe failed",
            deployment=deployment,
        )
    bulk(deployment, member, [mfa], reason="the probe reads the wrong account")
    assert selectors.overridden_item_ids(deployment) == {mfa.pk}
