"""A deployment's AWS target: a set of accounts, audited, bound by signatures; picked by
hand or from an AWS organization (moto's); and the migration from the single target."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from readiness.audit.models import AuditEvent
from readiness.checklists import targets
from readiness.checklists.models import AwsAccount, AwsOrganizationSource, ChecklistItem
from readiness.checklists.services import RecordClosed
from readiness.checklists.targets import AccountSpec
from readiness.checklists.tasks import aws_organization_list
from readiness.outbox.models import OutboxMessage
from readiness.probes.organizations import organization_accounts
from signoff.signatures.models import SignOff
from signoff.signatures.selectors import digest_of, standings
from tests.factories import make_deployment, set_aws_target
from tests.signoff_helpers import approve_all, signers_for

WORKLOAD = "123456789012"
LOGGING = "210987654321"


def role_of(account_id: str, name: str = "ReadinessProbe") -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


def accounts_of(deployment) -> list[tuple]:
    return list(
        AwsAccount.objects.filter(deployment=deployment)
        .order_by("account_id")
        .values_list("account_id", "regions", "role_arn", "external_id")
    )


def actions(deployment) -> list[str]:
    return list(
        AuditEvent.objects.filter(deployment=deployment)
        .order_by("id")
        .values_list("action", flat=True)
    )


@pytest.mark.django_db
def test_accounts_are_added_changed_and_removed_each_audited(deployment, member):
    targets.aws_account_save(
        deployment=deployment, user=member, spec=AccountSpec(WORKLOAD, ["us-east-1"])
    )
    targets.aws_account_save(
        deployment=deployment,
        user=member,
        spec=AccountSpec(LOGGING, ["eu-west-1"], role_of(LOGGING), "ext-logging", "logging"),
    )
    targets.aws_account_save(
        deployment=deployment,
        user=member,
        spec=AccountSpec(WORKLOAD, ["us-east-1", "eu-west-1"], role_of(WORKLOAD), "ext-w"),
    )
    assert accounts_of(deployment) == [
        (WORKLOAD, ["us-east-1", "eu-west-1"], role_of(WORKLOAD), "ext-w"),
        (LOGGING, ["eu-west-1"], role_of(LOGGING), "ext-logging"),
    ]
    assert targets.aws_account_remove(deployment=deployment, user=member, account_id=LOGGING)
    assert not targets.aws_account_remove(deployment=deployment, user=member, account_id=LOGGING)
    assert [a[0] for a in accounts_of(deployment)] == [WORKLOAD]
    assert actions(deployment)[1:] == [
        "deployment.aws_account_added",
        "deployment.aws_account_added",
        "deployment.aws_account_changed",
        "deployment.aws_account_removed",
        "deployment.aws_account_removed",
    ]
    changed = AuditEvent.objects.get(action="deployment.aws_account_changed")
    # The audit says whether an external id is set, never what it is.
    assert "ext-w" not in json.dumps([changed.before, changed.after])
    assert changed.after["accounts"][0]["external_id_set"] is True


@pytest.mark.django_db
def test_only_one_account_may_use_the_workers_own_credentials(deployment, member):
    targets.aws_account_save(
        deployment=deployment, user=member, spec=AccountSpec(WORKLOAD, ["us-east-1"])
    )
    with pytest.raises(ValidationError, match="Only one account"):
        targets.aws_account_save(
            deployment=deployment, user=member, spec=AccountSpec(LOGGING, ["us-east-1"])
        )
    with pytest.raises(ValidationError, match="Only one account"):
        targets.deployment_set_aws_target(
            deployment=deployment,
            user=member,
            accounts=[AccountSpec(WORKLOAD, ["us-east-1"]), AccountSpec(LOGGING, ["us-east-1"])],
        )
    with pytest.raises(ValidationError, match="named once"):
        targets.deployment_set_aws_target(
            deployment=deployment,
            user=member,
            accounts=[AccountSpec(WORKLOAD, ["us-east-1"]), AccountSpec(WORKLOAD, ["eu-west-1"])],
        )
    assert [a[0] for a in accounts_of(deployment)] == [WORKLOAD]


@pytest.mark.django_db
def test_a_stranger_cannot_change_the_target(deployment, outsider):
    with pytest.raises(PermissionDenied):
        targets.aws_account_save(
            deployment=deployment, user=outsider, spec=AccountSpec(WORKLOAD, ["us-east-1"])
        )
    assert not AwsAccount.objects.exists()


@pytest.mark.django_db
def test_the_target_of_a_closed_record_no_longer_changes(deployment, member):
    set_aws_target(deployment)
    type(deployment).objects.filter(pk=deployment.pk).update(state="deployed")
    with pytest.raises(RecordClosed):
        targets.aws_account_save(
            deployment=deployment, user=member, spec=AccountSpec(LOGGING, ["us-east-1"])
        )
    with pytest.raises(RecordClosed):
        targets.aws_account_remove(deployment=deployment, user=member, account_id=WORKLOAD)
    assert [a[0] for a in accounts_of(deployment)] == [WORKLOAD]


# --- Signatures bind the accounts ----------------------------------------------------------


@pytest.mark.django_db
def test_adding_an_account_makes_every_signature_stale_and_says_so(member, team):
    deployment = make_deployment(user=member, team=team)
    set_aws_target(deployment)
    signers = signers_for(team)
    approve_all(deployment, signers)
    assert deployment.state == "approved"
    targets.aws_account_save(
        deployment=deployment,
        user=member,
        spec=AccountSpec(LOGGING, ["eu-west-1"], role_of(LOGGING), "ext-logging"),
    )
    deployment.refresh_from_db()
    assert deployment.state == "in_review"
    every = standings([deployment])[deployment.pk]
    assert every and not any(standing.fresh for standing in every)
    stale = AuditEvent.objects.filter(deployment=deployment, action="signoff.stale")
    assert stale.count() == SignOff.objects.filter(deployment=deployment).count()
    assert all(f"AWS account {LOGGING}: added (eu-west-1)" in e.after["changes"] for e in stale)


@pytest.mark.django_db
def test_changing_an_accounts_regions_is_a_change_but_its_role_is_not(member, team):
    deployment = make_deployment(user=member, team=team)
    set_aws_target(deployment, role_arn=role_of(WORKLOAD), external_id="ext-1")
    approve_all(deployment, signers_for(team))
    # How an account is read (its role, its external id) is not what a role approves.
    targets.aws_account_save(
        deployment=deployment,
        user=member,
        spec=AccountSpec(WORKLOAD, ["us-east-1"], role_of(WORKLOAD, "Other"), "ext-2"),
    )
    deployment.refresh_from_db()
    assert deployment.state == "approved"
    targets.aws_account_save(
        deployment=deployment,
        user=member,
        spec=AccountSpec(WORKLOAD, ["us-east-1", "eu-west-1"], role_of(WORKLOAD), "ext-2"),
    )
    deployment.refresh_from_db()
    assert deployment.state == "in_review"
    (standing, *_) = standings([deployment])[deployment.pk]
    assert f"AWS account {WORKLOAD}: regions us-east-1 → eu-west-1, us-east-1" in standing.changes


def as_format_2(state: dict) -> dict:
    """A state as the version before accounts were bound wrote it."""
    legacy = json.loads(json.dumps(state))
    legacy["format"] = 2
    del legacy["deployment"]["aws_accounts"]
    for entry in legacy["items"]:
        for probe in entry.get("probes", []):
            del probe["account"]
    return legacy


@pytest.mark.django_db
def test_a_signature_of_the_single_target_format_stays_fresh_after_the_upgrade(member, team):
    """Upgrading does not make every signature stale: one made before accounts were bound
    (format 2) is compared with the state now written in format 2."""
    deployment = make_deployment(user=member, team=team)
    set_aws_target(deployment)
    approve_all(deployment, signers_for(team))
    standing = standings([deployment])[deployment.pk][0]
    signed = standing.active
    legacy = as_format_2(standing.state)
    # A newer signature of the role, as the older version stored it (rows are only added).
    SignOff.objects.create(
        deployment=deployment,
        role=signed.role,
        sequence=signed.sequence + 1,
        user=signed.user,
        printed_name=signed.printed_name,
        signed_at=signed.signed_at,
        meaning="approve",
        digest=digest_of(legacy),
        approved_state=legacy,
    )
    again = standings([deployment])[deployment.pk][0]
    assert again.active.approved_state["format"] == 2
    assert again.fresh and again.changes == []
    # A change to what format 2 binds still shows.
    owned = ChecklistItem.objects.filter(section__deployment=deployment, owner_role=signed.role)
    owned.filter(pk=owned.first().pk).update(note="changed after signing")
    later = standings([deployment])[deployment.pk][0]
    assert not later.fresh
    assert any("note changed" in line for line in later.changes)


# --- Organizations (moto's) ------------------------------------------------------------------


@pytest.fixture
def organization(aws):
    """An organization: the management account (moto's default) and three members, two of
    them in the "prod" OU; each member holds the ReadinessProbe role."""
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    prod = org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    members = {}
    for name in ("workload", "networking", "sandbox"):
        status = org.create_account(Email=f"{name}@example.com", AccountName=name)
        account_id = status["CreateAccountStatus"]["AccountId"]
        members[name] = account_id
        if name != "sandbox":
            org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=prod)
    return {"members": members, "prod": prod, "root": root}


def source(deployment, member, **fields):
    return targets.aws_organization_save(
        deployment=deployment,
        user=member,
        role_arn=fields.get("role_arn", f"arn:aws:iam::{WORKLOAD}:role/OrganizationReader"),
        parent_id=fields.get("parent_id", ""),
        external_id=fields.get("external_id", ""),
        member_role_pattern="arn:aws:iam::{account}:role/ReadinessProbe",
    )


def reader_role(aws):
    aws.client("iam").create_role(
        RoleName="OrganizationReader",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )


def listed(deployment, member, *, throw=True) -> targets.OrganizationListing:
    """Ask for a listing, and run what the outbox sends as a worker would (a retry runs at
    once, in this thread, when the task is not told to throw)."""
    targets.aws_organization_listing_request(deployment=deployment, user=member)
    message = OutboxMessage.objects.filter(task_name=targets.LISTING_TASK).latest("id")
    aws_organization_list.apply(args=message.args, throw=throw)
    return targets.aws_organization_listing(AwsOrganizationSource.objects.get())


@pytest.mark.django_db
def test_the_organizations_source_lists_every_account_or_one_ous(
    aws, organization, deployment, member
):
    everyone = {a.account_id: a.name for a in organization_accounts(aws)}
    assert everyone == {
        WORKLOAD: "master",
        **{account_id: name for name, account_id in organization["members"].items()},
    }
    reader_role(aws)
    source(deployment, member, parent_id=organization["prod"])
    listing = listed(deployment, member)
    assert listing.done and sorted(a.name for a in listing.accounts) == ["networking", "workload"]


@pytest.mark.django_db
def test_a_request_only_asks_a_worker_to_list_the_accounts(aws, organization, deployment, member):
    reader_role(aws)
    source(deployment, member)
    assert targets.aws_organization_listing(AwsOrganizationSource.objects.get()).state == ""
    saved = targets.aws_organization_save(
        deployment=deployment,
        user=member,
        role_arn=f"arn:aws:iam::{WORKLOAD}:role/OrganizationReader",
        member_role_pattern="arn:aws:iam::{account}:role/ReadinessProbe",
        list_accounts=True,
    )
    listing = targets.aws_organization_listing(saved)
    assert listing.pending and not listing.accounts
    (message,) = OutboxMessage.objects.filter(task_name=targets.LISTING_TASK)
    assert message.args == [saved.pk, 1]
    assert aws_organization_list.apply(args=message.args, throw=True).result == "done"
    assert len(targets.aws_organization_listing(AwsOrganizationSource.objects.get()).accounts) == 4
    # A second delivery of the same message finds the attempt finished: nothing to do.
    assert aws_organization_list.apply(args=message.args, throw=True).result == ""


@pytest.mark.django_db
def test_picked_organization_accounts_are_added_with_the_role_pattern(
    aws, organization, deployment, member
):
    reader_role(aws)
    source(deployment, member, external_id="org-ext")
    found = {a.name: a for a in listed(deployment, member).accounts}
    targets.aws_accounts_add_from_organization(
        deployment=deployment,
        user=member,
        accounts=[found["workload"], found["networking"]],
        regions=["eu-west-1"],
    )
    workload, networking = (
        organization["members"]["workload"],
        organization["members"]["networking"],
    )
    assert accounts_of(deployment) == sorted(
        [
            (workload, ["eu-west-1"], role_of(workload), "org-ext"),
            (networking, ["eu-west-1"], role_of(networking), "org-ext"),
        ]
    )
    assert AwsAccount.objects.get(account_id=workload).name == "workload"
    event = AuditEvent.objects.get(action="deployment.aws_accounts_added")
    assert "OrganizationReader" in event.reason
    assert AuditEvent.objects.filter(action="deployment.aws_organization_set").count() == 1


@pytest.mark.django_db
def test_an_organization_that_cannot_be_read_says_why(aws, organization, deployment, member):
    # The reader role does not exist: AWS (and the emulator) refuse to assume it.
    source(deployment, member)
    listing = listed(deployment, member)
    assert listing.failed and not listing.accounts
    assert "AccessDenied" in listing.error and "trust policy" in listing.error
    AwsOrganizationSource.objects.all().delete()
    with pytest.raises(ValidationError, match="Organizations source first"):
        targets.aws_organization_listing_request(deployment=deployment, user=member)


@pytest.mark.django_db
def test_a_stranger_cannot_ask_for_a_listing(aws, organization, deployment, member, outsider):
    reader_role(aws)
    source(deployment, member)
    with pytest.raises(PermissionDenied):
        targets.aws_organization_listing_request(deployment=deployment, user=outsider)
    assert not OutboxMessage.objects.filter(task_name=targets.LISTING_TASK).exists()


class Refusing(BaseHTTPRequestHandler):
    """AWS Organizations answering every request with one error (moto lists accounts for any
    caller, and never throttles); STS stays the emulator's."""

    code = ""
    requests = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests += 1
        body = json.dumps({"__type": self.code, "Message": f"{self.code} here"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def organizations_refusing(aws, monkeypatch):
    """Point Organizations (only) at a server that answers `code`: call it with the code."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Refusing.requests = 0
    monkeypatch.setenv("AWS_ENDPOINT_URL_ORGANIZATIONS", f"http://127.0.0.1:{server.server_port}")

    def refusing(code: str) -> type[Refusing]:
        Refusing.code = code
        return Refusing

    yield refusing
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("AccessDeniedException", "management account or a delegated administrator"),
        ("AWSOrganizationsNotInUseException", "not in an AWS organization"),
        ("ParentNotFoundException", "No organizational unit or root has that id"),
    ],
)
@pytest.mark.django_db
def test_an_organizations_refusal_says_what_to_do(
    organizations_refusing, aws, deployment, member, code, advice
):
    organizations_refusing(code)
    reader_role(aws)
    source(deployment, member)
    listing = listed(deployment, member)
    assert listing.failed
    assert f"AWS refused ListAccounts: {code}" in listing.error and advice in listing.error


@pytest.mark.django_db
def test_throttling_is_retried_by_the_task_then_said(
    organizations_refusing, aws, deployment, member
):
    server = organizations_refusing("TooManyRequestsException")
    reader_role(aws)
    source(deployment, member)
    listing = listed(deployment, member, throw=False)
    assert listing.failed
    assert "TooManyRequestsException" in listing.error and "again in a minute" in listing.error
    # botocore's own attempts, then the task's: once, and LISTING_THROTTLE_RETRIES more.
    tries = targets.LISTING_THROTTLE_RETRIES + 1
    assert server.requests > tries and server.requests % tries == 0
