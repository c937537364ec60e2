"""The audit head a record prints pins the trail: `verify_audit --anchor FILE.pdf` and the
stored records' anchors catch a trail rewritten or cut after the record was made, even with
no checkpoint since; checkpoints are copied to an anchor log outside the database."""

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from readiness.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from readiness.audit.services import anchor_log_name, audit_checkpoint
from signoff.records.anchors import Anchor, NoAnchor, printed_anchor
from signoff.records.content import stated_anchor
from signoff.records.services import record_generate
from tests.readiness.audit.test_audit import edit_item, raw, rewrite_from
from tests.signoff_helpers import approve_all, give_role, signers_for


@pytest.fixture
def record(deployment, team, media):
    approve_all(deployment, signers_for(team))
    return record_generate(deployment_id=deployment.pk)


def data_of(record) -> bytes:
    with default_storage.open(record.file.name, "rb") as stored:
        return stored.read()


def pdf_of(record, tmp_path):
    path = tmp_path / "record.pdf"
    path.write_bytes(data_of(record))
    return path


@pytest.mark.django_db
def test_a_record_prints_its_chain_head_and_verify_audit_reads_it(record, deployment, tmp_path):
    anchor = printed_anchor(data_of(record))
    head = AuditEvent.objects.filter(deployment=deployment).get(seq=anchor.position)
    assert anchor == Anchor(f"deployment:{deployment.pk}", head.seq, head.hash, anchor.record_id)
    assert anchor.record_id == str(record.record_id)
    # The embedded context (covered by the signature) states the same head as the page.
    assert stated_anchor(data_of(record)) == anchor
    out = __import__("io").StringIO()
    call_command("verify_audit", "--anchor", str(pdf_of(record, tmp_path)), stdout=out)
    assert f"prints deployment:{deployment.pk} position {head.seq} ({head.hash})" in out.getvalue()
    assert "2 record anchors" in out.getvalue()  # the stored record's and the file's


@pytest.mark.django_db
def test_a_rewrite_after_the_record_is_caught_by_its_anchor_without_any_checkpoint(
    record, deployment, member, tmp_path
):
    anchor = printed_anchor(data_of(record))
    give_role(member, deployment.team, "security")  # MFA is Security's
    edit_item(deployment, member, "MFA", reason="re-checked after approval")
    assert not AuditCheckpoint.objects.exists()
    rewrite_from(deployment, anchor.position - 1, "never happened")
    anchored = AuditEvent.objects.get(deployment=deployment, seq=anchor.position)
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", "--anchor", str(pdf_of(record, tmp_path)))
    message = str(failure.value)
    assert (
        f"event #{anchored.pk} ({anchored.action} {anchored.object_type}:{anchored.object_id}) "
        f"is not the event record {record.number} of deployment {deployment.pk} committed at "
        f"position {anchor.position}"
    ) in message
    assert "the chain was rewritten from position 1" in message


@pytest.mark.django_db
def test_a_cut_tail_is_caught_by_the_anchor_of_a_record(record, deployment):
    anchor = printed_anchor(data_of(record))
    for event in AuditEvent.objects.filter(deployment=deployment, seq__gte=anchor.position):
        raw("DELETE FROM signoff_auditevent WHERE id = %s", [event.pk])
    raw(
        "UPDATE readiness_auditchainhead SET seq = %s, hash = %s WHERE chain = %s",
        [
            anchor.position - 1,
            AuditEvent.objects.get(deployment=deployment, seq=anchor.position - 1).hash,
            f"deployment:{deployment.pk}",
        ],
    )
    with pytest.raises(CommandError, match="the events after it were removed"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_a_file_that_is_not_a_record_is_named(tmp_path):
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4 nothing here")
    with pytest.raises(NoAnchor):
        printed_anchor(path.read_bytes())
    with pytest.raises(CommandError, match=r"notes\.pdf: not a readable PDF"):
        call_command("verify_audit", "--anchor", str(path))


@pytest.mark.django_db
def test_checkpoints_are_copied_to_the_anchor_log_and_held_to_it(deployment, member, media):
    give_role(member, deployment.team, "security")  # MFA is Security's
    edit_item(deployment, member)
    checkpoint = audit_checkpoint()
    name = anchor_log_name(checkpoint)
    assert default_storage.exists(name)
    call_command("verify_audit")
    # Rewriting the database's checkpoint (and the head rows with it) disagrees with the log.
    raw(
        "UPDATE readiness_auditcheckpoint SET created_at = created_at - interval '1 day' "
        "WHERE id = %s"
        if __import__("django.db").db.connection.vendor == "postgresql"
        else "UPDATE readiness_auditcheckpoint SET created_at = '2000-01-01 00:00:00' "
        "WHERE id = %s",
        [checkpoint.pk],
    )
    with pytest.raises(CommandError, match=f"checkpoint #{checkpoint.pk}"):
        call_command("verify_audit")
    default_storage.delete(name)
    with pytest.raises(CommandError, match="is missing from the anchor log"):
        call_command("verify_audit")
    assert AuditChainHead.objects.get(chain=f"deployment:{deployment.pk}").checkpointed_seq
