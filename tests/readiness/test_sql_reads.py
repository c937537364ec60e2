"""The checklist page's reads written in SQL (readiness/sql.py) give what the ORM queries
they replaced gave: the same rows, in the same order, with the same related rows attached."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Model, Prefetch, prefetch_related_objects
from django.db.models.signals import post_init
from django.utils import timezone

from readiness.checklists import selectors
from readiness.checklists.models import AwsAccount, ChecklistItem, Deployment, ItemStatus
from readiness.evidence.selectors import latest_verdicts, verdicts_newest_first
from readiness.evidence.services import Upload, evidence_upload
from readiness.probe_runs import selectors as probe_run_selectors
from readiness.probe_runs.models import ProbeRun, ProbeRunState
from readiness.sql import ModelColumns, model_columns
from signoff.signatures.selectors import all_roles
from signoff.teams.models import Role
from tests.factories import UserFactory, make_deployment
from tests.readiness.api import samples
from tests.readiness.web.conftest import item_of, save_item

pytestmark = pytest.mark.django_db


def values(instance) -> dict:
    return {
        field.attname: getattr(instance, field.attname)
        for field in type(instance)._meta.concrete_fields
    }


def test_checklist_sections_read_what_deployment_sections_reads(deployment, member):
    save_item(item_of(deployment, "Unit Tests"), member, status=ItemStatus.FAILED)
    roles = {role.pk: role for role in all_roles()}
    read = selectors.checklist_sections(deployment, roles=roles)
    expected = selectors.deployment_sections(deployment)
    assert [values(section) for section in read] == [values(section) for section in expected]
    for section, old in zip(read, expected, strict=True):
        assert section.progress == old.progress
        items = list(old.items.all())
        assert [values(item) for item in section.item_list] == [values(item) for item in items]
        for item, old_item in zip(section.item_list, items, strict=True):
            assert item.section is section
            assert item.owner_role == old_item.owner_role
            assert (item.updated_by and item.updated_by.pk) == (
                old_item.updated_by and old_item.updated_by.pk
            )
            if item.updated_by is not None:
                assert item.updated_by.get_full_name() == old_item.updated_by.get_full_name()
                assert item.updated_by.username == old_item.updated_by.username
    assert any(item.updated_by for section in read for item in section.item_list)


def test_last_run_is_the_newest_numbered_run_with_who_cancelled_it(deployment, member):
    assert probe_run_selectors.last_run(deployment) is None
    for state in (ProbeRunState.SUCCEEDED, ProbeRunState.CANCELLED):
        ProbeRun.objects.create(
            deployment=deployment,
            state=state,
            regions=["us-east-1"],
            accounts=[{"account_id": "123456789012", "regions": ["us-east-1"]}],
            thresholds={"coverage": 80},
            cancelled_by=member if state == ProbeRunState.CANCELLED else None,
            finished_at=timezone.now(),
        )
    run = probe_run_selectors.last_run(deployment)
    expected = (
        probe_run_selectors.numbered(deployment.probe_runs.select_related("cancelled_by"))
        .filter(pk=run.pk)
        .get()
    )
    assert run == deployment.probe_runs.first()
    assert values(run) == values(expected)
    assert run.accounts == [{"account_id": "123456789012", "regions": ["us-east-1"]}]
    assert (run.number, run.cancelled_by.pk) == (2, member.pk)
    assert run.cancelled_by.get_full_name() == expected.cancelled_by.get_full_name()


def test_result_rows_read_what_values_read(deployment, member):
    run = ProbeRun.objects.create(deployment=deployment, state=ProbeRunState.SUCCEEDED)
    item = item_of(deployment, "Unit Tests")
    for key in ("test.b", "test.a"):
        run.results.create(
            item=item,
            probe_key=key,
            account_id="123456789012",
            region="us-east-1",
            section_title=item.section.title,
            item_title=item.title,
            title="A test probe",
            severity="high",
            state="done",
            status="pass",
            summary=key,
        )
    expected = [
        {**row, "run_id": run.pk, "run__deployment_id": deployment.pk}
        for row in run.results.order_by("probe_key", "account_id", "region").values(
            *probe_run_selectors.RESULT_ROW_FIELDS
        )
    ]
    assert probe_run_selectors.result_rows(run) == expected
    assert [row["probe_key"] for row in expected] == ["test.a", "test.b"]


def test_latest_verdicts_are_the_newest_of_each_item_with_their_evidence(deployment, member):
    for covered in (850, 700):
        evidence_upload(
            deployment=deployment,
            user=member,
            kind="cobertura",
            upload=Upload("coverage.xml", samples.cobertura(covered, 1000)),
        )
    expected: dict = {}
    for verdict in verdicts_newest_first([deployment.pk]).select_related("evidence__uploaded_by"):
        expected.setdefault(verdict.item_id, verdict)
    assert verdicts_newest_first([deployment.pk]).count() > len(expected) > 0
    read = latest_verdicts([deployment.pk])
    assert list(read) == list(expected)
    for item_id, verdict in read.items():
        assert values(verdict) == values(expected[item_id])
        assert values(verdict.evidence) == values(expected[item_id].evidence)
        assert values(verdict.evidence.uploaded_by) == values(
            expected[item_id].evidence.uploaded_by
        )
    item_id = next(iter(expected))
    assert list(latest_verdicts([deployment.pk], item_ids=[item_id])) == [item_id]
    assert latest_verdicts([deployment.pk], item_ids=[]) == {}
    assert latest_verdicts([]) == {}


def test_aws_accounts_are_read_as_the_prefetch_left_them(deployment, django_assert_num_queries):
    for account_id in ("222222222222", "111111111111"):
        AwsAccount.objects.create(
            deployment=deployment,
            account_id=account_id,
            regions=["eu-west-1", "us-east-1"],
            role_arn=f"arn:aws:iam::{account_id}:role/readiness",
        )
    selectors.read_aws_accounts(deployment)
    expected = Deployment.objects.get(pk=deployment.pk)
    prefetch_related_objects(
        [expected], Prefetch("aws_accounts", queryset=AwsAccount.objects.order_by("account_id"))
    )
    with django_assert_num_queries(0):
        read = list(deployment.aws_accounts.all())
        assert all(account.deployment is deployment for account in read)
        assert deployment.aws_regions == expected.aws_regions
        assert deployment.aws_accounts.exists()
    assert [values(account) for account in read] == [
        values(account) for account in expected.aws_accounts.all()
    ]
    assert [account.account_id for account in read] == ["111111111111", "222222222222"]


def test_deployment_visible_to_reads_what_deployments_visible_to_reads(
    deployment, member, django_assert_num_queries
):
    Deployment.objects.filter(pk=deployment.pk).update(deployed_at=timezone.now())
    # A second member: the join on the team's members must not repeat the row.
    deployment.team.members.add(UserFactory(username="sam"))
    expected = selectors.deployments_visible_to(member).get(pk=deployment.pk)
    read = selectors.deployment_visible_to(member, deployment.pk)
    assert values(read) == values(expected)
    with django_assert_num_queries(0):
        for relation in ("team", "template", "owner"):
            assert values(getattr(read, relation)) == values(getattr(expected, relation))


def test_deployment_visible_to_refuses_whom_deployments_visible_to_refuses(
    deployment, member, outsider
):
    other_team = make_deployment(user=outsider)
    assert selectors.deployment_visible_to(outsider, deployment.pk) is None
    assert selectors.deployment_visible_to(member, other_team.pk) is None
    assert selectors.deployment_visible_to(AnonymousUser(), deployment.pk) is None
    assert selectors.deployment_visible_to(member, 2**63) is None
    assert selectors.deployment_visible_to(member, other_team.pk + 1000) is None
    assert selectors.deployment_visible_to(member, deployment.pk) == deployment


def test_all_roles_are_every_role_in_roles_ordering():
    # The same position as a migrated role: the name decides between them.
    first = Role.objects.order_by("position", "name").first()
    Role.objects.create(name="Accessibility", slug="accessibility", position=first.position)
    Role.objects.create(name="Zzz Last", slug="zzz-last", position=first.position)
    read = all_roles()
    expected = list(Role.objects.all())
    assert [values(role) for role in read] == [values(role) for role in expected]
    assert len(expected) > 3 and [role.name for role in read][:1] == ["Accessibility"]


def read_row(reader, pk):
    table = connection.ops.quote_name(reader.model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {reader.select('x')} FROM {table} x WHERE x.id = %s", [pk])
        return cursor.fetchone()


def test_model_columns_build_instances_as_from_db_does(deployment, django_assert_num_queries):
    item = ChecklistItem.objects.filter(section__deployment=deployment).first()
    ChecklistItem.objects.filter(pk=item.pk).update(note="checked", updated_at=timezone.now())
    for fields in (None, ("title", "section", "updated_at")):
        reader = model_columns(ChecklistItem, fields)
        row = read_row(reader, item.pk)
        built = reader.instance(row)
        expected = ChecklistItem.from_db(connection.alias, reader.attnames, reader.values(row))
        assert type(built) is ChecklistItem
        assert {k: v for k, v in vars(built).items() if k != "_state"} == {
            k: v for k, v in vars(expected).items() if k != "_state"
        }
        assert (built._state.adding, built._state.db) == (False, connection.alias)
        assert (expected._state.adding, expected._state.db) == (False, connection.alias)
        assert built.get_deferred_fields() == expected.get_deferred_fields()
    assert built.get_deferred_fields() and built.updated_at is not None
    with django_assert_num_queries(1):  # a field not read loads when used, as .only() leaves it
        assert built.note == "checked"


def test_model_columns_build_through_from_db_where_a_receiver_listens_for_post_init(db):
    built = []

    def receiver(sender, instance, **kwargs):
        built.append(instance)

    post_init.connect(receiver, sender=Role)
    try:
        role = Role.objects.first()
        read = ModelColumns(Role).instance(read_row(ModelColumns(Role), role.pk))
    finally:
        post_init.disconnect(receiver, sender=Role)
    assert read == role and built[-1] is read


def test_model_columns_honour_a_receiver_connected_after_their_first_read(db):
    # The per-process cache (model_columns) keeps readers for good: a receiver connected
    # later must still see the instances they build.
    reader = model_columns(Role)
    role = Role.objects.first()
    assert reader.instance(read_row(reader, role.pk)) == role
    built = []

    def receiver(sender, instance, **kwargs):
        built.append(instance)

    post_init.connect(receiver, sender=Role)
    try:
        read = reader.instance(read_row(reader, role.pk))
    finally:
        post_init.disconnect(receiver, sender=Role)
    assert built and built[-1] is read


def test_model_columns_build_through_a_models_own_from_db(db, monkeypatch):
    made = []

    def from_db(cls, db, field_names, values):
        instance = Model.from_db.__func__(cls, db, field_names, values)
        made.append(instance)
        return instance

    monkeypatch.setattr(Role, "from_db", classmethod(from_db))
    role = Role.objects.first()
    reader = ModelColumns(Role)
    read = reader.instance(read_row(reader, role.pk))
    assert read == role and made and made[-1] is read
