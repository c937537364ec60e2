import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from readiness.checklists import services
from readiness.checklists.models import ChecklistItem, ItemChange, ItemStatus, TemplateItem
from tests.factories import UserFactory
from tests.signoff_helpers import give_role


def first_item(deployment, title="IAM Policies") -> ChecklistItem:
    return ChecklistItem.objects.get(section__deployment=deployment, title=title)


def save(item, user, **changes):
    expected_version = changes.pop("version", item.version)
    values = {
        "status": item.status,
        "note": item.note,
        "evidence_url": item.evidence_url,
        "na_reason": item.na_reason,
        **changes,
    }
    return services.item_update(item=item, user=user, expected_version=expected_version, **values)


@pytest.mark.django_db
def test_creating_a_deployment_snapshots_every_template_section_and_item(deployment):
    sections = list(deployment.sections.order_by("position"))
    assert len(sections) == 9
    items = ChecklistItem.objects.filter(section__deployment=deployment)
    assert items.count() == 56
    assert set(items.values_list("status", flat=True)) == {ItemStatus.OPEN}
    assert list(
        deployment.post_deployment_checks.order_by("position").values_list("label", flat=True)
    ) == ["Smoke tests passed", "Monitoring confirmed working", "No critical alarms"]


@pytest.mark.django_db
def test_editing_the_template_later_never_changes_an_existing_deployment(deployment):
    TemplateItem.objects.filter(title="IAM Policies").update(title="Changed", description="Changed")
    TemplateItem.objects.filter(title="MFA").delete()
    item = first_item(deployment)
    assert (item.title, item.description) == (
        "IAM Policies",
        "All roles follow least privilege principle",
    )
    assert ChecklistItem.objects.filter(section__deployment=deployment).count() == 56


@pytest.mark.django_db
def test_only_team_members_can_create_a_deployment(team, outsider):
    from tests.factories import make_deployment

    with pytest.raises(PermissionDenied):
        make_deployment(user=outsider, team=team)


@pytest.mark.django_db
def test_an_update_bumps_the_version_and_records_who_and_when(deployment, member):
    item = first_item(deployment)
    saved = save(item, member, status=ItemStatus.DONE, note="Access Analyzer clean")
    assert saved.version == 2
    assert saved.updated_by == member and saved.updated_at is not None
    change = ItemChange.objects.get(item=item)
    assert (change.previous_status, change.status, change.version) == ("open", "done", 2)
    assert change.note == "Access Analyzer clean"


@pytest.mark.django_db
def test_not_applicable_needs_a_reason(deployment, member):
    item = first_item(deployment, "Penetration Test")
    with pytest.raises(ValidationError, match="does not apply"):
        save(item, member, status=ItemStatus.NOT_APPLICABLE, na_reason="   ")
    item.refresh_from_db()
    assert item.status == ItemStatus.OPEN and item.version == 1


@pytest.mark.django_db
def test_the_reason_is_cleared_when_an_item_leaves_not_applicable(deployment, member):
    item = first_item(deployment, "Penetration Test")
    item = save(item, member, status=ItemStatus.NOT_APPLICABLE, na_reason="internal only")
    item = save(item, member, status=ItemStatus.DONE)
    assert item.na_reason == ""


@pytest.mark.django_db
def test_a_stale_edit_is_refused_and_the_newer_value_survives(deployment, member):
    colleague = UserFactory(username="jane")
    give_role(colleague, deployment.team, "security")
    page_loaded = first_item(deployment)
    save(first_item(deployment), colleague, status=ItemStatus.FAILED, note="admin role found")
    with pytest.raises(services.StaleEdit) as stale:
        save(page_loaded, member, status=ItemStatus.DONE, version=1)
    assert stale.value.current.status == ItemStatus.FAILED
    assert stale.value.current.note == "admin role found"
    item = first_item(deployment)
    assert (item.status, item.version, item.updated_by) == ("failed", 2, colleague)
    assert ItemChange.objects.filter(item=item).count() == 1


@pytest.mark.django_db
def test_an_outsider_cannot_update_an_item_through_the_service(deployment, outsider):
    with pytest.raises(PermissionDenied):
        save(first_item(deployment), outsider, status=ItemStatus.DONE)


@pytest.mark.django_db
def test_the_database_refuses_not_applicable_without_a_reason(deployment):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ChecklistItem.objects.filter(pk=first_item(deployment).pk).update(
            status=ItemStatus.NOT_APPLICABLE, na_reason=""
        )


@pytest.mark.django_db
def test_seed_demo_is_safe_to_rerun_and_keeps_the_passwords(settings, tmp_path):
    from io import StringIO

    from django.contrib.auth import authenticate
    from django.core.management import call_command

    from readiness.checklists.models import Deployment

    settings.DATA_DIR = tmp_path
    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    assert first.getvalue() == second.getvalue()
    password = dict(
        line.split() for line in (tmp_path / "demo-credentials.txt").read_text().splitlines()
    )["lead"]
    assert authenticate(username="lead", password=password)
    assert oct((tmp_path / "demo-credentials.txt").stat().st_mode)[-3:] == "600"
    demo = Deployment.objects.get(service="payments-api")
    assert (demo.environment, demo.version, str(demo.planned_date)) == (
        "production",
        "2.4.0",
        "2026-12-10",
    )
    statuses = dict(
        ChecklistItem.objects.filter(section__deployment=demo).values_list("title", "status")
    )
    assert statuses["Load Testing"] == "failed"
    assert statuses["Penetration Test"] == "not_applicable"
