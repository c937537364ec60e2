"""A deployment's AWS target becomes a set of accounts (AwsAccount), optionally picked from an
AWS Organizations source; probe runs record the accounts they read and each result its
account. The single target each deployment had becomes its one account row, and every
existing run and result is given the account it read."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def single_targets_to_accounts(apps, schema_editor):
    Deployment = apps.get_model("readiness", "Deployment")
    AwsAccount = apps.get_model("readiness", "AwsAccount")
    ProbeRun = apps.get_model("readiness", "ProbeRun")
    ProbeResult = apps.get_model("readiness", "ProbeResult")
    AwsAccount.objects.bulk_create(
        AwsAccount(
            deployment_id=deployment.pk,
            account_id=deployment.aws_account_id,
            regions=list(deployment.aws_regions or []),
            role_arn=deployment.aws_role_arn,
            external_id=deployment.aws_external_id if deployment.aws_role_arn else "",
        )
        for deployment in Deployment.objects.exclude(aws_account_id="").only(
            "pk", "aws_account_id", "aws_regions", "aws_role_arn", "aws_external_id"
        )
    )
    for run in ProbeRun.objects.exclude(account_id="").only(
        "pk", "account_id", "role_arn", "regions"
    ):
        run.accounts = [
            {
                "account_id": run.account_id,
                "name": "",
                "role_arn": run.role_arn,
                "regions": list(run.regions or []),
            }
        ]
        run.save(update_fields=["accounts"])
    ProbeResult.objects.update(
        account_id=Subquery(ProbeRun.objects.filter(pk=OuterRef("run_id")).values("account_id")[:1])
    )


def accounts_to_single_targets(apps, schema_editor):
    """Back to one target per deployment: the first account (by id) of each."""
    Deployment = apps.get_model("readiness", "Deployment")
    AwsAccount = apps.get_model("readiness", "AwsAccount")
    ProbeRun = apps.get_model("readiness", "ProbeRun")
    seen = set()
    for account in AwsAccount.objects.order_by("deployment_id", "account_id"):
        if account.deployment_id in seen:
            continue
        seen.add(account.deployment_id)
        Deployment.objects.filter(pk=account.deployment_id).update(
            aws_account_id=account.account_id,
            aws_regions=account.regions,
            aws_role_arn=account.role_arn,
            aws_external_id=account.external_id,
        )
    for run in ProbeRun.objects.exclude(accounts=[]):
        first = run.accounts[0]
        run.account_id, run.role_arn = first["account_id"], first["role_arn"]
        run.save(update_fields=["account_id", "role_arn"])


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0018_probe_run_cancel"),
    ]

    operations = [
        migrations.CreateModel(
            name="AwsAccount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("account_id", models.CharField(max_length=12, verbose_name="AWS account id")),
                ("name", models.CharField(blank=True, max_length=100)),
                ("regions", models.JSONField(default=list, verbose_name="AWS regions")),
                (
                    "role_arn",
                    models.CharField(blank=True, max_length=2048, verbose_name="role to assume"),
                ),
                (
                    "external_id",
                    models.CharField(blank=True, max_length=1224, verbose_name="external id"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "deployment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="aws_accounts",
                        to="readiness.deployment",
                    ),
                ),
            ],
            options={"ordering": ["deployment", "account_id"]},
        ),
        migrations.AddConstraint(
            model_name="awsaccount",
            constraint=models.UniqueConstraint(
                fields=("deployment", "account_id"), name="aws_account_once_per_deployment"
            ),
        ),
        migrations.AddConstraint(
            model_name="awsaccount",
            constraint=models.UniqueConstraint(
                condition=models.Q(("role_arn", "")),
                fields=("deployment",),
                name="one_aws_account_without_role",
            ),
        ),
        migrations.CreateModel(
            name="AwsOrganizationSource",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role_arn",
                    models.CharField(max_length=2048, verbose_name="role that lists the accounts"),
                ),
                (
                    "external_id",
                    models.CharField(blank=True, max_length=1224, verbose_name="external id"),
                ),
                (
                    "parent_id",
                    models.CharField(
                        blank=True, max_length=100, verbose_name="organizational unit or root"
                    ),
                ),
                ("member_role_pattern", models.CharField(max_length=2048)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "deployment",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="aws_organization",
                        to="readiness.deployment",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="proberesult",
            name="account_id",
            field=models.CharField(blank=True, max_length=12, verbose_name="AWS account id"),
        ),
        migrations.AddField(
            model_name="proberun",
            name="accounts",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(single_targets_to_accounts, accounts_to_single_targets),
        migrations.RemoveConstraint(
            model_name="proberesult",
            name="probe_result_per_region",
        ),
        migrations.AddConstraint(
            model_name="proberesult",
            constraint=models.UniqueConstraint(
                fields=("run", "account_id", "probe_key", "region"),
                name="probe_result_per_account_region",
            ),
        ),
        migrations.AlterModelOptions(
            name="proberesult",
            options={
                "ordering": [
                    "run",
                    "section_title",
                    "item_title",
                    "probe_key",
                    "account_id",
                    "region",
                ]
            },
        ),
        migrations.RemoveField(model_name="deployment", name="aws_account_id"),
        migrations.RemoveField(model_name="deployment", name="aws_external_id"),
        migrations.RemoveField(model_name="deployment", name="aws_regions"),
        migrations.RemoveField(model_name="deployment", name="aws_role_arn"),
        migrations.RemoveField(model_name="proberun", name="account_id"),
        migrations.RemoveField(model_name="proberun", name="role_arn"),
    ]
