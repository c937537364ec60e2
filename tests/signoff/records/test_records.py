"""Stored records: made by the worker on approval and verification, immutable, served from
storage; drafts rendered by a worker."""

import hashlib
import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from readiness.audit.append_only import refuse_flush_sql
from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_all
from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, DeploymentState, ItemStatus
from readiness.outbox.models import OutboxMessage
from signoff.lifecycle import services
from signoff.records import services as records
from signoff.records import signing
from signoff.records.models import SignedRecord
from signoff.records.tasks import record_draft_render
from tests.factories import TeamFactory, UserFactory
from tests.signoff_helpers import approve_all, sign, signers_for


@pytest.fixture
def signing_key(settings, tmp_path):
    settings.SIGNING_KEY_FILE = tmp_path / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "cert.pem"
    call_command("create_signing_cert", "--common-name", "Readiness test", stdout=io.StringIO())
    return tmp_path


@pytest.fixture
def signers(team):
    return signers_for(team)


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def eager_tasks(settings):
    from readiness.project.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.mark.django_db
def test_approval_makes_a_signed_stored_record(
    deployment, signers, signing_key, media, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        approve_all(deployment, signers)
    assert deployment.state == DeploymentState.APPROVED
    record = SignedRecord.objects.get(deployment=deployment)
    data = record.file.read()
    assert hashlib.sha256(data).hexdigest() == record.sha256 and record.size_bytes == len(data)
    assert record.pades_signed and "Readiness test" in record.certificate_subject
    assert record.number == 1 and record.deployment_state == "approved"
    assert sorted(s.role.slug for s in record.signoffs.all()) == sorted(
        ["tech-lead", "security", "devops", "product"]
    )
    text = text_of(data)
    assert str(record.record_id) in text and "DRAFT" not in text
    assert signing.verify_record(data).verdict == "valid"
    event = AuditEvent.objects.get(action="record.created")
    assert event.after["sha256"] == record.sha256
    assert verify_all().ok


@pytest.mark.django_db
def test_generation_is_safe_to_run_twice(deployment, signers, media, eager_tasks):
    approve_all(deployment, signers)
    first = records.record_generate(deployment_id=deployment.pk)
    second = records.record_generate(deployment_id=deployment.pk)
    assert first.pk == second.pk
    assert SignedRecord.objects.filter(deployment=deployment).count() == 1
    assert not first.pades_signed  # no key configured in this test: SHA-256 only


@pytest.mark.django_db
def test_no_record_before_approval(deployment, media):
    assert records.record_generate(deployment_id=deployment.pk) is None
    assert not SignedRecord.objects.exists()


@pytest.mark.django_db
def test_re_approval_after_a_change_keeps_both_records(deployment, signers, media):
    approve_all(deployment, signers)
    first = records.record_generate(deployment_id=deployment.pk)
    item = ChecklistItem.objects.get(section__deployment=deployment, title="Backup Strategy")
    readiness_services.item_update(
        item=item,
        user=signers["devops"],
        expected_version=item.version,
        status=ItemStatus.DONE,
        note="restore drill passed",
        evidence_url="",
        na_reason="",
        reason="the drill ran after approval",
    )
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_REVIEW
    sign(deployment, signers["devops"], "devops")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.APPROVED
    second = records.record_generate(deployment_id=deployment.pk)
    assert second.number == 2 and second.state_digest != first.state_digest
    assert first.file.read() != second.file.read()
    client = Client()
    client.force_login(signers["tech-lead"])
    for record in (first, second):
        response = client.get(f"/deployments/{deployment.pk}/records/{record.number}/")
        assert response.status_code == 200
        assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == record.sha256


@pytest.mark.django_db
def test_verification_makes_a_closing_record(deployment, signers, media):
    approve_all(deployment, signers)
    records.record_generate(deployment_id=deployment.pk)
    services.deployment_mark_deployed(
        deployment=deployment, user=signers["devops"], deployed_at=timezone.now()
    )
    for check in deployment.post_deployment_checks.all():
        services.post_check_record(check=check, user=signers["devops"], note="all green")
    closing = records.record_generate(deployment_id=deployment.pk)
    assert closing.number == 2 and closing.deployment_state == "verified"
    assert "all green" in text_of(closing.file.read())


@pytest.mark.django_db
def test_a_stored_record_is_served_without_rendering(deployment, signers, media):
    approve_all(deployment, signers)
    record = records.record_generate(deployment_id=deployment.pk)
    stored = record.file.read()
    # The checklist moves on after the record was stored: a record rendered now would say so.
    item = ChecklistItem.objects.get(section__deployment=deployment, title="Backup Strategy")
    readiness_services.item_update(
        item=item,
        user=signers["devops"],
        expected_version=item.version,
        status=ItemStatus.FAILED,
        note="restore drill failed after signing",
        evidence_url="",
        na_reason="",
        reason="the drill failed after approval",
    )
    assert "restore drill failed after signing" in text_of(records.draft_pdf(deployment))
    client = Client()
    client.force_login(signers["product"])
    response = client.get(f"/deployments/{deployment.pk}/records/1/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert response["X-Record-SHA256"] == record.sha256
    served = b"".join(response.streaming_content)
    assert served == stored and hashlib.sha256(served).hexdigest() == record.sha256
    assert "restore drill failed after signing" not in text_of(served)


@pytest.mark.django_db
def test_record_download_permissions(deployment, signers, media):
    approve_all(deployment, signers)
    records.record_generate(deployment_id=deployment.pk)
    url = f"/deployments/{deployment.pk}/records/1/"
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    stranger = UserFactory()
    TeamFactory(members=[stranger])
    other = Client()
    other.force_login(stranger)
    assert other.get(url).status_code == 404
    assert other.get(f"/deployments/{deployment.pk}/draft.pdf").status_code == 404
    member = Client()
    member.force_login(signers["security"])
    assert member.get(url).status_code == 200
    assert member.get(f"/deployments/{deployment.pk}/records/2/").status_code == 404
    assert member.post(url).status_code == 405


@pytest.mark.django_db
def test_draft_is_rendered_by_a_worker_watermarked_and_unsigned(
    deployment, member, signing_key, media
):
    client = Client()
    client.force_login(member)
    assert client.get(f"/deployments/{deployment.pk}/draft.pdf").status_code == 202
    (asked,) = OutboxMessage.objects.filter(task_name="signoff.record_draft_render")
    record_draft_render.apply(args=asked.args)
    response = client.get(f"/deployments/{deployment.pk}/draft.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "DRAFT" in response["Content-Disposition"]
    content = b"".join(response.streaming_content)
    reader = PdfReader(io.BytesIO(content))
    assert all("DRAFT" in page.extract_text() for page in reader.pages)
    assert not signing.verify_pdf(content).signed
    assert not SignedRecord.objects.exists()


@pytest.mark.django_db
def test_make_record_command(deployment, signers, media):
    out = io.StringIO()
    with pytest.raises(Exception, match="approved or verified"):
        call_command("make_record", str(deployment.pk), stdout=out)
    approve_all(deployment, signers)
    call_command("make_record", str(deployment.pk), stdout=out)
    assert "record 1 of" in out.getvalue()


@pytest.mark.django_db
def test_the_database_refuses_to_change_a_stored_record(deployment, signers, media):
    approve_all(deployment, signers)
    record = records.record_generate(deployment_id=deployment.pk)
    with connection.cursor() as cursor:  # as a real database: no test flush switch
        for statement in refuse_flush_sql(connection.vendor):
            cursor.execute(statement)
    for attempt in (
        lambda: SignedRecord.objects.filter(pk=record.pk).update(sha256="0" * 64),
        lambda: record.signoffs.clear(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    record.refresh_from_db()
    assert record.signoffs.count() == 4
