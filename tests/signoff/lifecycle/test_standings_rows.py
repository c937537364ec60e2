"""List pages read standings from item rows (`standings(..., rows=True)`): the same states,
digests, statuses, blockers and change lines as from model instances, whatever the items,
waivers, probe verdicts (failing, and erroring ones that carry an earlier verdict), CI
evidence and signatures hold; and a change shows on the very next load of both pages."""

import datetime
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from readiness.checklists.models import ChecklistItem, Deployment, ItemStatus
from readiness.evidence.services import Upload, evidence_upload
from signoff.lifecycle import services
from signoff.signatures.selectors import ItemRow, standings
from tests.factories import make_deployment
from tests.readiness.api.samples import trivy
from tests.signoff.records.test_record_truth import edit, finish_run, item
from tests.signoff_helpers import complete_items, sign, signers_for

pytestmark = pytest.mark.django_db


def scatter_statuses(deployment, rng: random.Random) -> None:
    """Every status, notes and links, straight in the database (what people would leave)."""
    for row in ChecklistItem.objects.filter(section__deployment=deployment):
        row.status = rng.choice(ItemStatus.values)
        row.na_reason = "out of scope" if row.status == ItemStatus.NOT_APPLICABLE else ""
        row.note = rng.choice(["", "checked", "see ticket 42"])
        row.evidence_url = rng.choice(["", "https://ci.example.com/run/7"])
        row.save(update_fields=["status", "na_reason", "note", "evidence_url"])


def compared(standing) -> tuple:
    return (
        standing.role.slug,
        standing.state,
        standing.digest,
        standing.status,
        [b.item.pk for b in standing.blockers],
        [b.item.pk for b in standing.waived],
        [i.pk for i in standing.items],
        standing.changes,
    )


def test_item_rows_give_the_same_standings_as_model_instances(member, team):
    rng = random.Random(17)
    signers = signers_for(team)
    made = [make_deployment(user=member, team=team, service=f"svc-{n}") for n in range(3)]
    signed, probed, plain = made
    # Signed by every role, then drift of every kind: an item edit, a failing and an
    # erroring probe, CI evidence, a waiver.
    complete_items(signed)
    services.signoff_request(deployment=signed, user=signers["tech-lead"])
    finish_run(signed)
    for slug in ("tech-lead", "security", "devops", "product"):
        sign(signed, signers[slug], slug)
    signed.refresh_from_db()
    edit(item(signed, "MFA"), signers, note="rotated the root key", reason="audit finding")
    finish_run(signed, failing=("Encryption",), erroring=("MFA",))
    evidence_upload(
        deployment=signed,
        user=member,
        kind="trivy",
        upload=Upload("trivy.json", trivy("HIGH")),
    )
    services.waiver_grant(
        item=item(signed, "Encryption"),
        user=signers["security"],
        reason="The legacy bucket is emptied next sprint",
        expires_at=timezone.now() + datetime.timedelta(days=10),
    )
    scatter_statuses(probed, rng)
    finish_run(probed, failing=("MFA",))
    scatter_statuses(plain, rng)

    deployments = list(
        Deployment.objects.filter(pk__in=[d.pk for d in made]).select_related("team", "template")
    )
    from_instances = standings(deployments)
    from_rows = standings(deployments, rows=True)

    assert {d.pk for d in deployments} == set(from_rows)
    for deployment in deployments:
        expected = [compared(s) for s in from_instances[deployment.pk]]
        assert [compared(s) for s in from_rows[deployment.pk]] == expected
    stale = [s for s in from_rows[signed.pk] if s.status == "stale"]
    assert {s.role.slug for s in stale} >= {"security", "product"}
    assert all(isinstance(i, ItemRow) for s in from_rows[signed.pk] for i in s.items)


def test_item_rows_follow_role_ids(member, team):
    deployment = make_deployment(user=member, team=team)
    loaded = Deployment.objects.select_related("team", "template").get(pk=deployment.pk)
    security = standings([loaded], rows=True, role_ids={item(deployment, "MFA").owner_role_id})
    assert [s.role.slug for s in security[deployment.pk]] == ["security"]
    assert security[deployment.pk][0].digest == next(
        s.digest for s in standings([loaded])[deployment.pk] if s.role.slug == "security"
    )


def test_a_change_shows_on_the_next_load_of_the_dashboard_and_my_signoffs(client, member, team):
    signers = signers_for(team)
    deployment = make_deployment(user=signers["security"], team=team, service="ledger")
    complete_items(deployment, "security")
    services.signoff_request(deployment=deployment, user=signers["tech-lead"])
    sign(deployment, signers["security"], "security")
    client.force_login(signers["security"])

    def badge():
        row = client.get("/").context["page"].object_list[0]
        return next(s.status for s in row.standings if s.role.slug == "security")

    def waiting():
        response = client.get(reverse("my_signoffs"))
        return [(d.service, s.status) for d, s in response.context["waiting"]]

    assert (badge(), waiting()) == ("approve", [])
    edit(item(deployment, "MFA"), signers, note="now with hardware keys", reason="audit")
    assert (badge(), waiting()) == ("stale", [("ledger", "stale")])
    sign(deployment, signers["security"], "security")
    assert (badge(), waiting()) == ("approve", [])


def test_dashboard_badges_read_no_signed_state_and_stay_flat_with_stale_rows(client, member, team):
    """Stale badges need the digest, never what was approved: no signed state is read, and a
    page of 10 signed and stale rows costs what a page of one does."""
    from tests.readiness.web.test_dashboard_scale import DASHBOARD_PAGE_MAX

    signers = signers_for(team)
    client.force_login(signers["security"])

    def signed_and_stale(count):
        for number in range(count):
            deployment = make_deployment(user=member, team=team, service=f"svc-{number}")
            complete_items(deployment, "security")
            services.signoff_request(deployment=deployment, user=signers["tech-lead"])
            sign(deployment, signers["security"], "security")
            edit(item(deployment, "MFA"), signers, note=f"changed {number}", reason="audit")

    def dashboard():
        client.get("/")
        with CaptureQueriesContext(connection) as context:
            response = client.get("/")
        statuses = [
            s.status
            for row in response.context["page"].object_list
            for s in row.standings
            if s.role.slug == "security"
        ]
        return [q["sql"] for q in context.captured_queries], statuses

    signed_and_stale(1)
    one_sql, one = dashboard()
    signed_and_stale(9)
    many_sql, many = dashboard()
    assert one == ["stale"] and many == ["stale"] * 10
    assert len(one_sql) == len(many_sql) <= DASHBOARD_PAGE_MAX
    assert not any('"approved_state"' in sql for sql in many_sql)


def test_signed_only_standings_give_every_badge_of_the_full_standings(member, team):
    """Not signed, revoked, stale, approved, rejected: the same status, label and signature
    whether or not the roles without a signature in force had their state computed; a
    deployment with none in force reads no item."""
    signers = signers_for(team)
    unsigned = make_deployment(user=member, team=team, service="unsigned")
    mixed = make_deployment(user=member, team=team, service="mixed")
    complete_items(mixed)
    services.signoff_request(deployment=mixed, user=signers["tech-lead"])
    sign(mixed, signers["security"], "security")
    sign(mixed, signers["devops"], "devops", meaning="reject", comment="no rollback plan")
    revoked = sign(mixed, signers["product"], "product")
    services.signoff_revoke(signoff=revoked, user=signers["product"], reason="wrong build")
    sign(mixed, signers["tech-lead"], "tech-lead")
    edit(item(mixed, "MFA"), signers, note="hardware keys now", reason="audit")
    deployments = list(
        Deployment.objects.filter(pk__in=[unsigned.pk, mixed.pk]).select_related("team", "template")
    )

    def badges(**kwargs):
        return {
            pk: [
                (s.role.slug, s.status, s.status_label, s.active.pk if s.active else None)
                for s in role_standings
            ]
            for pk, role_standings in standings(deployments, **kwargs).items()
        }

    full = badges()
    assert badges(rows=True, signed_only=True) == full
    assert {status for _, status, _, _ in full[mixed.pk]} == {
        "stale",
        "reject",
        "revoked",
        "approve",
    }
    assert {status for _, status, _, _ in full[unsigned.pk]} == {"missing"}
    with CaptureQueriesContext(connection) as context:
        standings([d for d in deployments if d.pk == unsigned.pk], rows=True, signed_only=True)
    assert not [q for q in context.captured_queries if "readiness_checklistitem" in q["sql"]]
