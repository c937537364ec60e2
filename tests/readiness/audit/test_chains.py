"""Per-deployment audit chains, the legacy chain before them, and the checkpoints over them."""

import hashlib
import io
import itertools
import json
from dataclasses import replace

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from readiness.audit import merkle
from readiness.audit.append_only import refuse_flush_sql
from readiness.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from readiness.audit.services import (
    GENESIS,
    audit_checkpoint,
    audit_record,
    chain_of,
    event_hash,
    heads_root,
    leaf_data,
)
from readiness.audit.verification import audit_verify, verify_all, verify_chain
from tests.factories import make_deployment
from tests.readiness.audit.test_audit import edit_item, raw, rewrite_from


@pytest.fixture
def second(member, team):
    return make_deployment(user=member, team=team, service="search-api")


@pytest.mark.django_db
def test_each_deployment_has_its_own_chain_from_position_one(deployment, second, member):
    edit_item(deployment, member)
    edit_item(second, member)
    edit_item(deployment, member, "CloudTrail")
    for owner, expected in ((deployment, 3), (second, 2)):
        events = list(AuditEvent.objects.filter(deployment=owner).order_by("seq"))
        assert [e.seq for e in events] == list(range(1, expected + 1))
        assert events[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert verify_chain(deployment.pk).ok and verify_chain(second.pk).ok
    assert verify_all().ok


@pytest.mark.django_db
def test_events_of_no_deployment_go_on_the_installation_chain(member, team):
    with transaction.atomic():
        first = audit_record(actor=member, action="team.touched", obj=team)
        then = audit_record(actor=member, action="team.touched", obj=team)
    assert (first.deployment_id, first.seq, then.seq) == (None, 1, 2)
    assert then.prev_hash == first.hash
    assert AuditChainHead.objects.get(chain="installation").hash == then.hash


@pytest.mark.django_db
def test_a_second_event_at_one_position_is_refused_by_the_database(deployment, member):
    head = AuditEvent.objects.get(deployment=deployment)
    fork = AuditEvent(
        created_at=timezone.now(),
        action="item.updated",
        object_type="x",
        object_id="1",
        deployment=deployment,
        seq=head.seq,
        prev_hash=head.prev_hash,
    )
    fork.hash = event_hash(fork)
    with pytest.raises(IntegrityError), transaction.atomic():
        fork.save(force_insert=True)


@pytest.mark.django_db
def test_a_checkpoint_commits_every_head_into_an_rfc6962_root(deployment, second, member):
    edit_item(deployment, member)
    checkpoint = audit_checkpoint()
    heads = {row.chain: (row.seq, row.hash) for row in AuditChainHead.objects.all()}
    assert set(heads) == {f"deployment:{deployment.pk}", f"deployment:{second.pk}"}
    assert checkpoint.tree_size == 2 and checkpoint.root == heads_root(heads)
    assert checkpoint.prev_hash == GENESIS and checkpoint.events == 3
    # Nothing moved: no new checkpoint. One edit: the next commits only that chain.
    assert audit_checkpoint() is None
    edit_item(second, member)
    following = audit_checkpoint()
    assert following.prev_hash == checkpoint.hash
    assert [leaf[0] for leaf in following.leaves] == [f"deployment:{second.pk}"]
    assert following.tree_size == 2
    report = verify_all()
    assert report.ok and report.checkpoints == 2 and report.root == following.root


def test_the_merkle_root_and_inclusion_proofs_follow_rfc6962():
    # The RFC's definition, written out plainly for small trees.
    def h(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    a, b, c = b"a", b"b", b"c"
    la, lb, lc = (h(b"\x00" + x) for x in (a, b, c))
    assert merkle.root([]) == h(b"").hex()
    assert merkle.root([a]) == la.hex()
    assert merkle.root([a, b]) == h(b"\x01" + la + lb).hex()
    assert merkle.root([a, b, c]) == h(b"\x01" + h(b"\x01" + la + lb) + lc).hex()
    for size in range(1, 19):
        leaves = [f"leaf {i}".encode() for i in range(size)]
        root = merkle.root(leaves)
        for index in range(size):
            proof = merkle.inclusion_proof(leaves, index)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            assert not merkle.verify_inclusion(b"other", index, size, proof, root)


@pytest.mark.django_db
def test_a_chain_rewritten_from_one_event_on_is_named_from_its_first_bad_event(deployment, member):
    edit_item(deployment, member, "MFA")  # position 2
    audit_checkpoint()
    edit_item(deployment, member, "CloudTrail")  # position 3
    audit_checkpoint()
    edit_item(deployment, member, "Encryption")  # position 4, past every checkpoint
    rewrite_from(deployment, 3, "never happened")
    events = list(AuditEvent.objects.filter(deployment=deployment).order_by("seq"))
    report = verify_all()
    assert not report.ok
    first_bad = events[2]
    assert f"event #{first_bad.pk}" in report.problem
    assert "rewritten from position 3" in report.problem
    page = verify_chain(deployment.pk)
    assert not page.ok and "rewritten" in page.problem


@pytest.mark.django_db
def test_a_removed_tail_is_caught_by_the_head_and_by_the_checkpoint(deployment, member):
    edit_item(deployment, member, "MFA")
    edit_item(deployment, member, "CloudTrail")
    audit_checkpoint()
    last = AuditEvent.objects.filter(deployment=deployment).latest("seq")
    raw("DELETE FROM signoff_auditevent WHERE id = %s", [last.pk])
    report = verify_all()
    assert not report.ok and "the events after it were removed" in report.problem
    # Also moving the head row back leaves the checkpoint, which says so.
    raw(
        "UPDATE readiness_auditchainhead SET seq = seq - 1, hash = %s WHERE chain = %s",
        [last.prev_hash, f"deployment:{deployment.pk}"],
    )
    problems = " ".join(verify_all().problems)
    assert "committed 3 events on this chain" in problems and "were removed" in problems


@pytest.mark.django_db
def test_a_removed_tail_past_the_last_checkpoint_is_caught_by_the_head(deployment, member):
    edit_item(deployment, member, "MFA")
    last = AuditEvent.objects.filter(deployment=deployment).latest("seq")
    raw("DELETE FROM signoff_auditevent WHERE id = %s", [last.pk])
    report = verify_chain(deployment.pk)
    assert not report.ok and "events at its end were removed" in report.problem


@pytest.mark.django_db
def test_an_edited_checkpoint_or_head_row_is_reported(deployment, member):
    audit_checkpoint()
    edit_item(deployment, member)
    checkpoint = audit_checkpoint()
    raw(
        "UPDATE readiness_auditcheckpoint SET leaves = %s WHERE id = %s",
        [json.dumps([]), checkpoint.pk],
    )
    problems = verify_all().problems
    assert f"checkpoint #{checkpoint.pk} was edited after it was written" in problems


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_truncate_a_checkpoint(deployment):
    checkpoint = audit_checkpoint()
    for attempt in (
        lambda: AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(root="0" * 64),
        lambda: AuditCheckpoint.objects.filter(pk=checkpoint.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            refuse_flush()
            attempt()
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
            refuse_flush()
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE readiness_auditcheckpoint")
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).root == checkpoint.root


def refuse_flush():
    """Behave as a real database would (the test database may be flushed between tests)."""
    with connection.cursor() as cursor:
        for statement in refuse_flush_sql(connection.vendor):
            cursor.execute(statement)


@pytest.mark.django_db
def test_legacy_events_verify_as_the_single_chain_they_were_written_on(deployment, member):
    # Two events as the code before per-deployment chains wrote them: no seq, one chain
    # across deployments, in id order.
    previous = GENESIS
    legacy = []
    for n in range(2):
        event = AuditEvent(
            created_at=timezone.now(),
            action="item.updated",
            object_type="readiness.checklistitem",
            object_id=str(n),
            deployment=deployment if n else None,
            prev_hash=previous,
        )
        event.hash = event_hash(event)
        assert "seq" not in json.loads(json.dumps(event_hash.__globals__["hashed_fields"](event)))
        event.save(force_insert=True)
        legacy.append(event)
        previous = event.hash
    AuditChainHead.objects.create(chain="legacy", seq=2, hash=previous)
    audit_checkpoint()
    report = verify_all()
    assert report.ok, report.problems
    assert {c.chain for c in report.chains} >= {"legacy", f"deployment:{deployment.pk}"}
    raw("DELETE FROM signoff_auditevent WHERE id = %s", [legacy[0].pk])
    assert "legacy: event" in verify_all().problem


@pytest.mark.django_db
def test_the_audit_page_verifies_only_its_own_deployment(member_client, deployment, second):
    raw("UPDATE signoff_auditevent SET reason = 'x' WHERE deployment_id = %s", [second.pk])
    page = member_client.get(f"/deployments/{deployment.pk}/audit/").content.decode()
    assert "audit chain verifies." in page
    broken = member_client.get(f"/deployments/{second.pk}/audit/").content.decode()
    assert "audit chain does not verify" in broken and "was edited" in broken


@pytest.mark.django_db
def test_verify_audit_prints_full_heads_and_the_checkpoint_root(deployment, member):
    edit_item(deployment, member)
    checkpoint = audit_checkpoint()
    out = io.StringIO()
    call_command("verify_audit", "--heads", stdout=out)
    head = AuditChainHead.objects.get(chain=f"deployment:{deployment.pk}")
    assert f"deployment:{deployment.pk}\t2\t{head.hash}\tok" in out.getvalue()
    assert checkpoint.root in out.getvalue()
    assert leaf_data("deployment:1", 2, "ab") == b"deployment:1 2 ab"
    raw("UPDATE signoff_auditevent SET reason = 'x' WHERE deployment_id = %s", [deployment.pk])
    with pytest.raises(CommandError, match="audit trail broken"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_the_audit_page_rehashes_only_the_events_after_the_last_full_verification(
    member_client, deployment, member
):
    for title in ("MFA", "CloudTrail"):
        edit_item(deployment, member, title)
    verification = audit_verify(source="verify_audit")
    verified = AuditChainHead.objects.get(chain=chain_of(deployment.pk))
    assert verification.ok and verified.verified_seq == verified.seq
    assert verified.verified_at == verification.checked_at
    edit_item(deployment, member, "Encryption")
    report = verify_chain(deployment.pk)
    assert report.ok, report.problem
    assert (report.verified_from, report.walked) == (verified.seq, 1)
    assert report.events == verified.seq + 1
    response = member_client.get(f"/deployments/{deployment.pk}/audit/")
    assert response.context["chain"].walked == 1
    assert f"Events 1\N{EN DASH}{verified.seq} were each rehashed" in response.content.decode()
    full = member_client.get(f"/deployments/{deployment.pk}/audit/?verify=full")
    assert full.context["chain"] == replace(report, verified_from=0, verified_at=None)


@pytest.mark.django_db
def test_an_event_edited_after_the_verified_position_is_caught_by_the_page(deployment, member):
    edit_item(deployment, member, "MFA")
    audit_verify()
    edit_item(deployment, member, "CloudTrail")
    last = AuditEvent.objects.filter(deployment=deployment).latest("seq")
    raw("UPDATE signoff_auditevent SET reason = 'x' WHERE id = %s", [last.pk])
    report = verify_chain(deployment.pk)
    assert not report.ok and f"event #{last.pk}" in report.problem and "edited" in report.problem


@pytest.mark.django_db
def test_a_rewrite_before_the_verified_position_is_caught_by_the_page(deployment, member):
    for title in ("MFA", "CloudTrail", "Encryption"):
        edit_item(deployment, member, title)
    audit_verify()
    rewrite_from(deployment, 2, "never happened")  # every later hash recomputed
    report = verify_chain(deployment.pk)
    assert not report.ok and "no longer holds the event" in report.problem


@pytest.mark.django_db
def test_an_edit_the_page_cannot_see_is_named_by_the_next_full_verification(deployment, member):
    """An event before the verified position edited with its hash left as it was: the page
    vouches for that part by the full verification's date, which it prints; `?verify=full`
    and the next full verification find it, and the page walks everything from then on."""
    for title in ("MFA", "CloudTrail", "Encryption"):
        edit_item(deployment, member, title)
    audit_verify()
    second_event = AuditEvent.objects.get(deployment=deployment, seq=2)
    raw("UPDATE signoff_auditevent SET reason = 'x' WHERE id = %s", [second_event.pk])
    assert verify_chain(deployment.pk).ok
    assert "was edited" in verify_chain(deployment.pk, full=True).problem
    assert not audit_verify().ok
    assert AuditChainHead.objects.get(chain=chain_of(deployment.pk)).verified_seq is None
    report = verify_chain(deployment.pk)
    assert not report.ok and report.verified_from == 0 and "was edited" in report.problem


@pytest.mark.django_db
def test_a_verification_that_doubts_the_checkpoints_forgets_every_verified_head(
    deployment, second, member
):
    edit_item(deployment, member, "MFA")
    edit_item(second, member, "MFA")
    audit_checkpoint()
    audit_verify()
    assert AuditChainHead.objects.filter(verified_seq__isnull=False).count() >= 2
    raw("UPDATE readiness_auditcheckpoint SET events = events + 1")
    assert not audit_verify().ok
    assert not AuditChainHead.objects.filter(verified_seq__isnull=False).exists()
