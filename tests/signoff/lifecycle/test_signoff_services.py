import datetime
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from readiness.audit.append_only import refuse_flush_sql
from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_all
from readiness.checklists import services as readiness_services
from readiness.checklists.models import (
    ChecklistItem,
    Deployment,
    DeploymentState,
    ItemChange,
    ItemStatus,
)
from readiness.people import display_name
from signoff.lifecycle import services
from signoff.signatures import selectors
from signoff.signatures.models import Revocation, SignOff, Waiver
from tests.factories import PASSWORD, TeamFactory, UserFactory, make_deployment
from tests.signoff_helpers import (
    ROLE_SLUGS,
    approve_all,
    complete_items,
    give_role,
    role,
    sign,
    signers_for,
)


@pytest.fixture
def signers(team):
    return signers_for(team)


@pytest.fixture
def in_review(deployment, signers):
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    deployment.refresh_from_db()
    return deployment


def edit(deployment, user, title, status=ItemStatus.FAILED, note="", reason="re-checked"):
    """An edit in review: the items were decided, so it says why."""
    item = ChecklistItem.objects.get(section__deployment=deployment, title=title)
    return readiness_services.item_update(
        item=item,
        user=user,
        expected_version=item.version,
        status=status,
        note=note,
        evidence_url="",
        na_reason="",
        reason=reason,
    )


def standing(deployment, slug):
    return selectors.standing_of(deployment, role(slug))


@pytest.mark.django_db
def test_items_are_snapshotted_with_their_template_owner_role(deployment):
    mfa = ChecklistItem.objects.get(section__deployment=deployment, title="MFA")
    unit = ChecklistItem.objects.get(section__deployment=deployment, title__startswith="Unit Tests")
    assert mfa.owner_role.slug == "security"
    assert unit.owner_role.slug == "tech-lead"


@pytest.mark.django_db
def test_request_moves_draft_to_in_review_and_is_audited(deployment, signers):
    services.signoff_request(deployment=deployment, user=signers["devops"])
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_REVIEW
    event = AuditEvent.objects.filter(deployment=deployment).latest("id")
    assert event.action == "deployment.state_changed"
    assert event.before == {"state": "draft"} and event.after == {"state": "in_review"}
    with pytest.raises(services.SignOffConflict):
        services.signoff_request(deployment=deployment, user=signers["devops"])


@pytest.mark.django_db
def test_signing_records_name_time_meaning_and_the_digest_of_the_role_state(in_review, signers):
    complete_items(in_review, "security")
    signoff = sign(in_review, signers["security"], "security")
    assert signoff.printed_name == "Security Signer"
    assert signoff.meaning == "approve" and signoff.sequence == 1
    assert signoff.signed_at.tzinfo is not None
    now = standing(in_review, "security")
    assert signoff.digest == now.digest == selectors.digest_of(signoff.approved_state)
    titles = [entry["title"] for entry in signoff.approved_state["items"]]
    assert "MFA" in titles and "Load Testing" not in titles
    assert signoff.approved_state["deployment"]["version"] == "2.4.0"
    assert now.fresh and now.status == "approve"
    event = AuditEvent.objects.filter(action="signoff.signed").get()
    assert event.after["digest"] == signoff.digest and event.actor == signers["security"]


@pytest.mark.django_db
def test_wrong_password_signs_nothing(in_review, signers):
    complete_items(in_review, "security")
    with pytest.raises(ValidationError) as error:
        sign(in_review, signers["security"], "security", password="not it")
    assert "password" in error.value.message_dict
    assert not SignOff.objects.exists()


@pytest.mark.django_db
def test_devops_member_cannot_sign_as_security(in_review, signers):
    complete_items(in_review)
    with pytest.raises(PermissionDenied):
        sign(in_review, signers["devops"], "security")


@pytest.mark.django_db
def test_member_of_another_team_holding_the_role_cannot_sign(in_review):
    stranger = UserFactory()
    give_role(stranger, TeamFactory(), "security")
    complete_items(in_review)
    with pytest.raises(PermissionDenied):
        sign(in_review, stranger, "security")


@pytest.mark.django_db
def test_cannot_sign_before_sign_off_is_requested(deployment, signers):
    complete_items(deployment)
    with pytest.raises(services.SignOffConflict, match="not been requested"):
        sign(deployment, signers["security"], "security")


@pytest.mark.django_db
def test_approving_is_refused_while_role_items_are_open(in_review, signers):
    with pytest.raises(ValidationError, match="cannot approve while these items are open"):
        sign(in_review, signers["security"], "security")
    # A rejection needs no complete items, only a reason.
    with pytest.raises(ValidationError):
        sign(in_review, signers["security"], "security", meaning="reject")
    rejection = sign(in_review, signers["security"], "security", "reject", "no pen test yet")
    assert rejection.meaning == "reject"


@pytest.mark.django_db
def test_conditions_are_required_for_a_conditional_approval(in_review, signers):
    complete_items(in_review, "devops")
    with pytest.raises(ValidationError, match="conditions"):
        sign(in_review, signers["devops"], "devops", "approve_with_conditions")
    signoff = sign(
        in_review, signers["devops"], "devops", "approve_with_conditions", "alarms within a week"
    )
    assert signoff.comment == "alarms within a week"
    assert standing(in_review, "devops").approving


@pytest.mark.django_db
def test_a_waiver_lets_the_role_approve_until_it_expires(in_review, signers):
    complete_items(in_review, "security")
    pen_test = ChecklistItem.objects.get(section__deployment=in_review, title="Penetration Test")
    ChecklistItem.objects.filter(pk=pen_test.pk).update(status=ItemStatus.OPEN)
    user = signers["security"]
    with pytest.raises(ValidationError):
        sign(in_review, user, "security")
    expires = timezone.now() + datetime.timedelta(days=7)
    waiver = services.waiver_grant(
        item=pen_test, user=user, reason="scheduled for next sprint", expires_at=expires
    )
    assert waiver.granted_by == user
    signoff = sign(in_review, user, "security")
    waived = next(e for e in signoff.approved_state["items"] if e["id"] == pen_test.pk)
    assert waived["waiver"]["reason"] == "scheduled for next sprint"
    assert AuditEvent.objects.filter(action="waiver.granted").count() == 1


@pytest.mark.django_db
def test_an_expired_waiver_does_not_cover_an_item(in_review, signers):
    complete_items(in_review, "security")
    pen_test = ChecklistItem.objects.get(section__deployment=in_review, title="Penetration Test")
    ChecklistItem.objects.filter(pk=pen_test.pk).update(status=ItemStatus.FAILED)
    granted = timezone.now() - datetime.timedelta(days=10)
    Waiver.objects.create(
        item=pen_test,
        reason="old",
        granted_by=signers["security"],
        granted_at=granted,
        expires_at=granted + datetime.timedelta(days=1),
    )
    with pytest.raises(ValidationError, match="Penetration Test"):
        sign(in_review, signers["security"], "security")


@pytest.mark.django_db
def test_waiver_rules(in_review, signers):
    pen_test = ChecklistItem.objects.get(section__deployment=in_review, title="Penetration Test")
    soon = timezone.now() + datetime.timedelta(days=3)
    with pytest.raises(PermissionDenied):
        services.waiver_grant(item=pen_test, user=signers["devops"], reason="x", expires_at=soon)
    with pytest.raises(ValidationError) as error:
        services.waiver_grant(
            item=pen_test,
            user=signers["security"],
            reason=" ",
            expires_at=timezone.now() + datetime.timedelta(days=400),
        )
    assert set(error.value.message_dict) == {"reason", "expires_at"}
    waiver = services.waiver_grant(
        item=pen_test, user=signers["security"], reason="accepted", expires_at=soon
    )
    with pytest.raises(services.SignOffConflict):
        services.waiver_grant(
            item=pen_test, user=signers["security"], reason="again", expires_at=soon
        )
    services.waiver_withdraw(waiver=waiver, user=signers["security"], reason="pen test booked")
    waiver.refresh_from_db()
    assert waiver.withdrawn_by == signers["security"] and waiver.withdrawal_reason
    assert AuditEvent.objects.filter(action="waiver.withdrawn").exists()


@pytest.mark.django_db
def test_one_person_may_not_sign_for_two_roles(in_review, signers, team):
    both = signers["security"]
    give_role(both, team, "devops")
    complete_items(in_review)
    sign(in_review, both, "security")
    with pytest.raises(ValidationError, match="two roles"):
        sign(in_review, both, "devops")


@pytest.mark.django_db
def test_the_two_roles_rule_can_be_switched_off(in_review, signers, team, settings):
    settings.SIGNOFF_ONE_ROLE_PER_PERSON = False
    both = signers["security"]
    give_role(both, team, "devops")
    complete_items(in_review)
    sign(in_review, both, "security")
    assert sign(in_review, both, "devops").role.slug == "devops"


@pytest.mark.django_db
def test_a_fresh_approval_cannot_be_signed_twice_but_a_rejection_can_follow(in_review, signers):
    complete_items(in_review, "security")
    sign(in_review, signers["security"], "security")
    with pytest.raises(services.SignOffConflict, match="already approved"):
        sign(in_review, signers["security"], "security")
    rejection = sign(in_review, signers["security"], "security", "reject", "found a hole")
    assert rejection.sequence == 2
    assert standing(in_review, "security").status == "reject"


@pytest.mark.django_db
def test_four_approvals_make_the_deployment_approved(in_review, signers):
    approve_all(in_review, signers)
    assert in_review.state == DeploymentState.APPROVED
    change = AuditEvent.objects.filter(action="deployment.state_changed").latest("id")
    assert change.after == {"state": "approved"}
    assert verify_all().ok


@pytest.mark.django_db
def test_item_change_makes_the_owning_role_stale_and_shows_what_changed(in_review, signers):
    approve_all(in_review, signers)
    edit(in_review, signers["security"], "MFA", ItemStatus.FAILED, reason="MFA found off")
    security = standing(in_review, "security")
    assert security.status == "stale"
    changed_at = ItemChange.objects.get(item__title="MFA", previous_status="done").changed_at
    line = (
        f"MFA: done → failed — {display_name(signers['security'])}, "
        f"{changed_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC: “MFA found off”"
    )
    assert line in security.changes
    # Product signs the summary, which holds every status: it is stale too.
    assert standing(in_review, "product").status == "stale"
    # DevOps owns nothing that changed.
    assert standing(in_review, "devops").fresh
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.IN_REVIEW
    stale_events = AuditEvent.objects.filter(action="signoff.stale")
    assert stale_events.count() == 2
    assert line in stale_events.get(object_id=str(security.active.pk)).after["changes"]


@pytest.mark.django_db
def test_note_change_outside_a_role_scope_leaves_it_fresh(in_review, signers):
    approve_all(in_review, signers)
    edit(in_review, signers["tech-lead"], "Load Testing", ItemStatus.DONE, note="k6: 2k rps")
    assert standing(in_review, "tech-lead").status == "stale"
    assert (
        standing(in_review, "tech-lead")
        .changes[0]
        .startswith("Load Testing: note changed: (none) → “k6: 2k rps” — ")
    )
    for slug in ("security", "devops", "product"):
        assert standing(in_review, slug).fresh, slug
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.IN_REVIEW


@pytest.mark.django_db
def test_reverting_a_change_makes_the_sign_off_fresh_again(in_review, signers):
    approve_all(in_review, signers)
    edit(in_review, signers["devops"], "Backup Strategy", ItemStatus.FAILED)
    assert standing(in_review, "devops").status == "stale"
    edit(in_review, signers["devops"], "Backup Strategy", ItemStatus.DONE)
    assert standing(in_review, "devops").fresh


@pytest.mark.django_db
def test_renewing_a_stale_sign_off_brings_approval_back(in_review, signers):
    approve_all(in_review, signers)
    edit(in_review, signers["devops"], "Backup Strategy", ItemStatus.DONE, note="restore tested")
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.IN_REVIEW
    renewed = sign(in_review, signers["devops"], "devops")
    assert renewed.sequence == 2
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.APPROVED


@pytest.mark.django_db
def test_revocation_is_a_new_row_and_takes_approval_back(in_review, signers):
    approve_all(in_review, signers)
    signoff = standing(in_review, "product").active
    with pytest.raises(ValidationError):
        services.signoff_revoke(signoff=signoff, user=signers["product"], reason="")
    with pytest.raises(PermissionDenied):
        services.signoff_revoke(signoff=signoff, user=signers["security"], reason="not mine")
    services.signoff_revoke(signoff=signoff, user=signers["product"], reason="scope changed")
    with pytest.raises(services.SignOffConflict):
        services.signoff_revoke(signoff=signoff, user=signers["product"], reason="twice")
    assert Revocation.objects.get().reason == "scope changed"
    assert SignOff.objects.filter(pk=signoff.pk).exists()
    assert standing(in_review, "product").status == "revoked"
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.IN_REVIEW


@pytest.mark.django_db
def test_a_rejection_takes_an_approved_deployment_back_to_review(in_review, signers):
    approve_all(in_review, signers)
    sign(in_review, signers["security"], "security", "reject", "CVE found in base image")
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.IN_REVIEW


@pytest.mark.django_db
def test_lifecycle_to_deployed_and_verified(in_review, signers):
    approve_all(in_review, signers)
    lead = signers["tech-lead"]
    with pytest.raises(ValidationError):
        services.deployment_mark_deployed(
            deployment=in_review,
            user=lead,
            deployed_at=timezone.now() + datetime.timedelta(days=1),
        )
    deployed_at = timezone.now().replace(microsecond=0)
    services.deployment_mark_deployed(deployment=in_review, user=lead, deployed_at=deployed_at)
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.DEPLOYED and in_review.deployed_at == deployed_at
    # The record is closed: the checklist no longer changes, sign-offs stand.
    with pytest.raises(readiness_services.RecordClosed):
        edit(in_review, signers["security"], "MFA", ItemStatus.FAILED)
    with pytest.raises(services.SignOffConflict):
        services.signoff_revoke(
            signoff=standing(in_review, "product").active, user=signers["product"], reason="x"
        )
    checks = list(in_review.post_deployment_checks.order_by("position"))
    assert len(checks) == 3
    with pytest.raises(ValidationError):
        services.post_check_record(check=checks[0], user=lead, note="  ")
    for check in checks:
        services.post_check_record(check=check, user=signers["devops"], note="dashboards green")
    in_review.refresh_from_db()
    assert in_review.state == DeploymentState.VERIFIED
    checks[0].refresh_from_db()
    assert checks[0].checked_by == signers["devops"] and checks[0].note == "dashboards green"
    with pytest.raises(services.SignOffConflict):
        services.post_check_record(check=checks[0], user=lead, note="again")
    states = [
        e.after["state"]
        for e in AuditEvent.objects.filter(deployment=in_review, action="deployment.state_changed")
    ]
    assert states == ["in_review", "approved", "deployed", "verified"]
    assert verify_all().ok


@pytest.mark.django_db
def test_cannot_mark_deployed_before_approval(in_review, signers):
    with pytest.raises(services.SignOffConflict, match="Only an approved deployment"):
        services.deployment_mark_deployed(
            deployment=in_review, user=signers["devops"], deployed_at=timezone.now()
        )


@pytest.mark.django_db
def test_post_checks_wait_for_the_deployment(in_review, signers):
    check = in_review.post_deployment_checks.first()
    with pytest.raises(services.SignOffConflict):
        services.post_check_record(check=check, user=signers["devops"], note="too early")


@pytest.mark.django_db
def test_probe_results_are_part_of_what_a_role_approves(in_review, signers):
    from readiness.probe_runs.models import ProbeResult, ProbeRun

    approve_all(in_review, signers)
    mfa = ChecklistItem.objects.get(section__deployment=in_review, title="MFA")
    run = ProbeRun.objects.create(deployment=in_review, state="succeeded", total=1, completed=1)
    ProbeResult.objects.create(
        run=run,
        item=mfa,
        probe_key="iam.mfa",
        region="global",
        section_title="Security",
        item_title="MFA",
        title="MFA",
        severity="high",
        state="done",
        status="fail",
        summary="user ci-admin has no MFA",
    )
    from readiness.probe_runs.services import apply_run

    apply_run(run)
    security = standing(in_review, "security")
    assert security.status == "stale"
    assert any("iam.mfa [global] now fail" in change for change in security.changes)


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_sign_offs(in_review, signers):
    complete_items(in_review, "security")
    signoff = sign(in_review, signers["security"], "security")
    services.signoff_revoke(signoff=signoff, user=signers["security"], reason="r")
    for statement in refuse_flush_sql(connection.vendor):  # as a real database
        _execute(statement, None)
    for attempt in (
        lambda: SignOff.objects.filter(pk=signoff.pk).update(comment="edited"),
        # Past the ORM's own PROTECT check, straight to the database.
        lambda: _execute("DELETE FROM signoff_signoff WHERE id = %s", [signoff.pk]),
        lambda: Revocation.objects.all().update(reason="other"),
        lambda: Revocation.objects.all().delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    signoff.refresh_from_db()
    assert signoff.comment == "" and signoff.revocation.reason == "r"


def _execute(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_simultaneous_sign_offs_for_one_role_make_one(team):
    signers = signers_for(team)
    second = UserFactory(first_name="Second", last_name="Security")
    give_role(second, team, "security")
    deployment = make_deployment(user=signers["tech-lead"], team=team)
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    complete_items(deployment, "security")
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt(user):
        try:
            barrier.wait(timeout=10)
            sign(Deployment.objects.get(pk=deployment.pk), user, "security")
            outcomes.append("signed")
        except services.SignOffConflict as conflict:
            outcomes.append(f"conflict: {conflict}")
        except Exception as error:  # surfaced in the assertion below
            outcomes.append(f"{type(error).__name__}: {error}")
        finally:
            close_old_connections()
            connection.close()

    threads = [
        threading.Thread(target=attempt, args=(user,)) for user in (signers["security"], second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(o.split(":")[0] for o in outcomes) == ["conflict", "signed"], outcomes
    assert SignOff.objects.filter(deployment=deployment).count() == 1


@pytest.mark.django_db
def test_every_step_is_in_the_verified_chain(in_review, signers):
    approve_all(in_review, signers)
    actions = set(AuditEvent.objects.filter(deployment=in_review).values_list("action", flat=True))
    assert {"deployment.created", "deployment.state_changed", "signoff.signed"} <= actions
    assert verify_all().ok
    assert len(ROLE_SLUGS) == SignOff.objects.filter(deployment=in_review).count()
    assert PASSWORD


@pytest.mark.django_db
def test_the_database_allows_one_sign_off_per_role_and_turn(in_review, signers):
    complete_items(in_review, "security")
    signoff = sign(in_review, signers["security"], "security")
    duplicate = {
        field: getattr(signoff, field)
        for field in ("deployment", "role", "sequence", "printed_name", "signed_at", "digest")
    }
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        SignOff.objects.create(
            **duplicate, user=signers["security"], meaning="approve", approved_state={}
        )
