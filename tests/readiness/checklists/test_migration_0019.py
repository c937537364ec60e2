"""Migration 0019 both ways: the single AWS target each deployment had (its aws_* columns, and
a probe run's account_id and role_arn) becomes AwsAccount rows and run accounts, and going
back restores the columns from them.

Django's MigrationExecutor migrates the test database to 0018, the rows are written with the
historical models of that state (today's models no longer have the columns), and the test
ends on the latest migrations whatever happened.
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from readiness.checklists import selectors
from tests.factories import TeamFactory, UserFactory

BEFORE = [("readiness", "0018_probe_run_cancel")]
AFTER = [("readiness", "0019_aws_accounts")]
ROLE = "arn:aws:iam::210000000001:role/ReadinessProbe"


def migrate(targets):
    """Migrate to `targets` and return the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrator():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    yield migrate
    migrate(latest)


# Migrating changes the schema: a transactional test (pytest-django runs these last), which
# puts the seeded rows back when it ends as the suite's other transactional tests do (a plain
# flush re-creates the content types under new ids, and the next serialized test's restore of
# the old ids collides with them).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migration_0019_moves_single_targets_into_accounts_and_back(migrator):
    owner = UserFactory(username="owner")
    team = TeamFactory(name="Payments", slug="payments", members=[owner])
    template = selectors.default_template()

    apps = migrator(BEFORE)
    Deployment = apps.get_model("readiness", "Deployment")
    ProbeRun = apps.get_model("readiness", "ProbeRun")
    ProbeResult = apps.get_model("readiness", "ProbeResult")

    def deployment(service, **target):
        return Deployment.objects.create(
            team_id=team.pk,
            template_id=template.pk,
            owner_id=owner.pk,
            service=service,
            environment="production",
            version="1.0",
            **target,
        )

    assumed = deployment(
        "payments",
        aws_account_id="210000000001",
        aws_regions=["eu-west-1", "us-east-1"],
        aws_role_arn=ROLE,
        aws_external_id="ext-1",
    )
    own = deployment(
        "ledger",
        aws_account_id="123456789012",
        aws_regions=["us-east-1"],
        aws_role_arn="",
        # Without a role an external id means nothing: not carried over.
        aws_external_id="stale",
    )
    untargeted = deployment("docs")
    run = ProbeRun.objects.create(
        deployment_id=assumed.pk,
        account_id="210000000001",
        role_arn=ROLE,
        regions=["eu-west-1"],
        state="succeeded",
    )
    result = ProbeResult.objects.create(
        run_id=run.pk,
        probe_key="iam.root_mfa",
        region="eu-west-1",
        section_title="Security",
        item_title="Root MFA",
        title="Root MFA",
        severity="high",
    )

    apps = migrator(AFTER)
    AwsAccount = apps.get_model("readiness", "AwsAccount")
    rows = {
        (a.deployment_id, a.account_id, tuple(a.regions), a.role_arn, a.external_id)
        for a in AwsAccount.objects.all()
    }
    assert rows == {
        (assumed.pk, "210000000001", ("eu-west-1", "us-east-1"), ROLE, "ext-1"),
        (own.pk, "123456789012", ("us-east-1",), "", ""),
    }
    assert not AwsAccount.objects.filter(deployment_id=untargeted.pk).exists()
    migrated_run = apps.get_model("readiness", "ProbeRun").objects.get(pk=run.pk)
    assert migrated_run.accounts == [
        {"account_id": "210000000001", "name": "", "role_arn": ROLE, "regions": ["eu-west-1"]}
    ]
    migrated_result = apps.get_model("readiness", "ProbeResult").objects.get(pk=result.pk)
    assert migrated_result.account_id == "210000000001"
    # A second account, as a deployment may now span: going back keeps the first by id.
    AwsAccount.objects.create(
        deployment_id=assumed.pk,
        account_id="210000000009",
        regions=["ap-south-1"],
        role_arn="arn:aws:iam::210000000009:role/ReadinessProbe",
    )
    AwsAccount.objects.filter(deployment_id=own.pk).update(regions=["eu-central-1"])

    apps = migrator(BEFORE)
    Deployment = apps.get_model("readiness", "Deployment")
    targets = {
        d.pk: (d.aws_account_id, list(d.aws_regions or []), d.aws_role_arn, d.aws_external_id)
        for d in Deployment.objects.all()
    }
    assert targets == {
        assumed.pk: ("210000000001", ["eu-west-1", "us-east-1"], ROLE, "ext-1"),
        own.pk: ("123456789012", ["eu-central-1"], "", ""),
        untargeted.pk: ("", [], "", ""),
    }
    restored_run = apps.get_model("readiness", "ProbeRun").objects.get(pk=run.pk)
    assert (restored_run.account_id, restored_run.role_arn) == ("210000000001", ROLE)
