"""Query counts of the sign-off pages stay flat as items and deployments grow."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from readiness.audit.models import AuditEvent
from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, DeploymentState, ItemStatus
from signoff.lifecycle import services
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.signoff.web.conftest import HTMX, client_for, is_panel, item_form, role_url
from tests.signoff_helpers import approve_all, complete_items, give_role, sign, signers_for

pytestmark = pytest.mark.django_db


# Ceilings measured on SQLite and PostgreSQL (the same statements, savepoints included);
# raise one only with a reason, never to make room for a query per item or deployment.
# The role page: session and user, the deployment, the role, the standings (roles, items,
# latest probe results, waivers in force, sign-offs), the viewer's roles, every waiver of
# the deployment, then the latest finished run (a member's item cards) or the role's
# members (anyone else); the items a person marked complete, for the overrides of failing
# probes (+1; where there are some, their probe results, findings, histories and run numbers,
# the same for one as for six: test_overrides_and_waivers.py); the AWS accounts the digests
# bind (+1). The htmx panel reads the same.
ROLE_PAGE_MAX = 15
# My sign-offs: session and user, the memberships, the roles and templates (who signs what),
# the count and the page of deployments that may wait (the page's ids cut over narrow rows,
# then their rows: +1, sorting full rows cost more), their standings (six reads for all
# of them at once, the AWS accounts the digests bind included) and the user's own signatures.
MY_SIGNOFFS_MAX = 16
# An htmx item save that turns two sign-offs stale: the save as in
# readiness/web/test_queries.py, then the re-evaluation under the deployment's lock (the
# standings, each signature with whether its stale event is recorded already) and three more
# audit events (two stale, one state change), each reading the chain head and, on PostgreSQL,
# taking the advisory lock; the item card reads its waiver (37 there, 33 on SQLite); the
# newest CI evidence, for the digests and the item card (+2); the outbox row of each stale
# sign-off's mail, one INSERT each (+2); the changed items' histories, read once for both
# stale events, which say who changed what, when and why (+1); the deployment's progress
# counters recounted with the item (+1); the editor's membership and roles, read once for the
# view and the service's ownership gate (+1). 45 before the saved item, the signatures'
# existence and the roles stopped being read twice. The AWS accounts the digests bind, read
# with the standings (+1); whether the person's decision overrode a probe, for the checklist
# row's flag (+1). What the stale signatures approved, read for their change lines only,
# where the re-evaluation reads the standings' bound fields (+1); whether their stale events
# were recorded, asked with the signatures (-1). The deployment read with the item, the same
# query being the access check (-1).
ITEM_SAVE_WITH_SIGNOFFS_MAX = 41


def queries_of(request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as context:
        response = request()
    return len(context.captured_queries), response


def checklist_markdown(name: str, *, security: int) -> str:
    """Security owns `security` items; Tech Lead (Testing) and DevOps (Reliability) one each."""
    lines = [f"# {name}", "", "A checklist built for a test.", "", "## Security", ""]
    lines += [f"- [ ] **Guard {n}:** Check guard {n}" for n in range(1, security + 1)]
    lines += ["", "## Reliability", "", "- [ ] **Spare:** Check the spare", ""]
    lines += ["## Testing", "", "- [ ] **Unit:** Run the unit tests", ""]
    return "\n".join(lines)


# Query counts


@pytest.fixture
def small_template():
    source = checklist_markdown("Small", security=3)
    return readiness_services.template_import(source=source).template


@pytest.fixture
def small_and_large(member, team, signers, small_template):
    """A 5-item deployment (3 for Security) and a 56-item one (14 for Security), each with
    a Security approval, a waiver and some probe-free history."""
    small = make_deployment(user=member, team=team, template=small_template, service="small")
    large = make_deployment(user=member, team=team, service="large")
    for deployment in (small, large):
        services.signoff_request(deployment=deployment, user=member)
        complete_items(deployment)
        item = ChecklistItem.objects.filter(
            section__deployment=deployment, owner_role__slug="security"
        ).first()
        ChecklistItem.objects.filter(pk=item.pk).update(status=ItemStatus.OPEN)
        services.waiver_grant(
            item=item,
            user=signers["security"],
            reason="accepted",
            expires_at=timezone.now() + datetime.timedelta(days=3),
        )
        sign(deployment, signers["security"], "security")
    return small, large


@pytest.mark.parametrize("viewer", ["security", "devops"])
def test_role_page_queries_do_not_grow_with_the_number_of_items(
    signers, small_and_large, viewer, django_assert_max_num_queries
):
    small, large = small_and_large
    client = client_for(signers[viewer])

    def page(deployment, **headers):
        return lambda: client.get(role_url(deployment, "security"), headers=headers)

    page(small)()  # warm the session
    small_count, small_response = queries_of(page(small))
    large_count, large_response = queries_of(page(large))
    assert small_response.status_code == large_response.status_code == 200
    assert len(small_response.context["standing"].items) == 3
    assert len(large_response.context["standing"].items) == 14
    assert small_count == large_count
    with django_assert_max_num_queries(ROLE_PAGE_MAX):
        page(large)()
    small_count, _ = queries_of(page(small, **HTMX))
    large_count, fragment = queries_of(page(large, **HTMX))
    assert is_panel(fragment)
    assert small_count == large_count <= ROLE_PAGE_MAX


def test_my_signoffs_queries_do_not_grow_with_the_number_of_deployments(
    team, member, signers, django_assert_max_num_queries
):
    few_user = UserFactory(username="few")
    many_user = UserFactory(username="many")
    few_team = TeamFactory(name="Few", slug="few")
    many_teams = [TeamFactory(name=f"Many {n}", slug=f"many-{n}") for n in range(3)]
    give_role(few_user, few_team, "security")
    for many_team in many_teams:
        give_role(many_user, many_team, "security")
        give_role(many_user, many_team, "devops")
    cases = [(few_user, [few_team], 2), (many_user, many_teams, 15)]
    for user, teams, count in cases:
        for number in range(count):
            deployment = make_deployment(
                user=user, team=teams[number % len(teams)], service=f"{user.username}-{number}"
            )
            services.signoff_request(deployment=deployment, user=user)
            if number % 2:
                complete_items(deployment, "security")
                signoff = sign(deployment, user, "security")
                if number % 3 == 0:
                    services.signoff_revoke(signoff=signoff, user=user, reason="again")

    def page(user):
        client = client_for(user)
        client.get(reverse("my_signoffs"))
        return lambda: client.get(reverse("my_signoffs"))

    few_count, few_response = queries_of(page(few_user))
    many_count, many_response = queries_of(page(many_user))
    # Few: the unsigned one. Many: DevOps on all 15, Security on the 8 unsigned and the 2
    # revoked.
    assert len(few_response.context["waiting"]) == 1
    assert len(many_response.context["waiting"]) == 25
    assert len(many_response.context["signed"]) == 7
    assert few_count == many_count
    request = page(many_user)
    with django_assert_max_num_queries(MY_SIGNOFFS_MAX):
        request()


def test_htmx_item_save_with_sign_offs_does_not_grow_with_the_checklist(
    member, signers, small_and_large, django_assert_max_num_queries
):
    small, large = small_and_large
    for deployment in (small, large):
        approve_all(deployment, signers)
        assert deployment.state == DeploymentState.APPROVED
    give_role(member, small.team, "security")  # only its holders change a Security item
    client = client_for(member)
    client.get(reverse("dashboard"))

    def save_a_security_item(deployment, status):
        item = (
            ChecklistItem.objects.filter(
                section__deployment=deployment, owner_role__slug="security"
            )
            .order_by("section__position", "position")
            .last()
        )
        url = reverse("item_update", args=[deployment.pk, item.pk])
        data = item_form(item, status=status, note=f"now {status}", reason="found broken")
        return lambda: client.post(url, data, headers={"HX-Request": "true"})

    # The change turns Security and Product stale and takes the deployment back to review.
    small_count, small_response = queries_of(save_a_security_item(small, ItemStatus.FAILED))
    request = save_a_security_item(large, ItemStatus.FAILED)
    with django_assert_max_num_queries(ITEM_SAVE_WITH_SIGNOFFS_MAX) as captured:
        large_response = request()
    assert small_response.status_code == large_response.status_code == 200
    assert small_count == len(captured)
    for deployment in (small, large):
        deployment.refresh_from_db()
        assert deployment.state == DeploymentState.IN_REVIEW
    stale = AuditEvent.objects.filter(action="signoff.stale")
    # Each names who changed the item, when and why (one read of the items' histories).
    assert sorted(
        line.split(" — ")[0] + line[line.index(":", line.index(" UTC")) :]
        for line in stale.values_list("after__changes__0", flat=True)
    ) == [
        "Guard 3: done → failed: “found broken”",
        "Guard 3: done → failed: “found broken”",
        "Privacy: done → failed: “found broken”",
        "Privacy: done → failed: “found broken”",
    ]


def stale_after_changes(count: int):
    """An approved deployment of a team of its own whose Security sign-off went stale:
    `count` Security items changed (status and note, with a reason) by two editors in turn.
    Returns the deployment and the team's Security signer."""
    team = TeamFactory(name=f"Changed {count}", slug=f"changed-{count}")
    signers = signers_for(team)
    second_editor = UserFactory(username=f"kim-{count}", first_name="Kim", last_name="Ode")
    give_role(second_editor, team, "security")
    editors = [signers["security"], second_editor]
    deployment = make_deployment(user=signers["tech-lead"], team=team, service=f"x{count}")
    approve_all(deployment, signers)
    items = ChecklistItem.objects.filter(
        section__deployment=deployment, owner_role__slug="security"
    ).order_by("section__position", "position")[:count]
    for number, item in enumerate(items):
        readiness_services.item_update(
            item=item,
            user=editors[number % 2],
            expected_version=item.version,
            status=ItemStatus.FAILED,
            note=f"broken since release {number}",
            evidence_url="",
            na_reason="",
            reason=f"found broken ({number})",
        )
    return deployment, signers["security"]


# Not named `page`: pytest-playwright would take it for its browser page, parametrize the test
# by browser and so pull every browser test in among these (they flush the database).
@pytest.mark.parametrize("where", ["role page", "checklist page", "my sign-offs"])
def test_stale_explanations_read_the_changes_in_one_batch_1_vs_10_changed_items(where):
    """Who changed what, when, from what to what, for one changed item or ten: the same
    number of queries on each page that explains a stale sign-off."""
    urls = {
        "role page": lambda deployment: role_url(deployment, "security"),
        "checklist page": lambda deployment: reverse("deployment_detail", args=[deployment.pk]),
        "my sign-offs": lambda deployment: reverse("my_signoffs"),
    }
    counts = {}
    for changed in (1, 10):
        deployment, signer = stale_after_changes(changed)
        client = client_for(signer)
        url = urls[where](deployment)
        client.get(url)  # warm the session
        counts[changed], response = queries_of(lambda: client.get(url))  # noqa: B023
        assert response.status_code == 200
        if where == "my sign-offs":
            standings = [s for _, s in response.context["waiting"]]
        else:
            standings = response.context["standings"]
        security = next(s for s in standings if s.role.slug == "security")
        # Each item's status and note, each naming its editor.
        assert len(security.change_lines) == 2 * changed
        assert all(line.by is not None and line.item_id for line in security.change_lines)
        note = security.change_lines[1]
        assert note.detail == "note changed: (none) → “broken since release 0”"
        assert str(note).startswith(f"{note.subject}: {note.detail} — Security Signer, ")
    assert counts[1] == counts[10]


# What a person's autosave costs on a signed deployment, the request the edit benchmark
# (bench/concurrency.py) makes over and over: each thing is read once. Session and user; the
# deployment, the item and the editor's access; the deployment's and the item's UPDATE; the
# audit append (head, event, head) and the item's change row; the re-evaluation (the
# deployment locked with whether a signature stands; the owning role's latest signature,
# with whether its stale event is recorded: it is, and it approved another note, so the
# role stays stale and no standing is read); the card's latest run, waiver and CI
# evidence; whether a person's decision overrode a probe, for the row's flag (+1, when it
# was a person's). 16 on SQLite and PostgreSQL, transaction statements aside (31 before the
# reads were shared; 25 before the standings were skipped where the edit cannot change
# them).
NOTE_EDIT_SIGNED_MAX = 16


def test_a_note_edit_on_a_signed_deployment_reads_each_thing_once(member, signers, small_and_large):
    _, large = small_and_large
    approve_all(large, signers)
    give_role(member, large.team, "security")
    client = client_for(member)
    client.get(reverse("dashboard"))
    item = ChecklistItem.objects.filter(
        section__deployment=large, owner_role__slug="security"
    ).first()
    url = reverse("item_update", args=[large.pk, item.pk])

    def save_note(note):
        item.refresh_from_db()
        data = item_form(item, note=note, reason="re-checked")
        return lambda: client.post(url, data, headers=HTMX)

    queries_of(save_note("first look"))  # turns Security's sign-off stale, as under load
    request = save_note("second look")
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.note == "second look"
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    role_reads = [sql for sql in statements if 'FROM "signoff_rolemembership"' in sql]
    # The view's ownership check and the service's gate share one read of the editor's
    # membership and roles.
    assert len(role_reads) == 1
    # An item's own columns read, through the ORM or in SQL (the view's read is written so).
    item_reads = [
        sql
        for sql in statements
        if sql.startswith("SELECT") and 'FROM "readiness_checklistitem"' in sql and '"title"' in sql
    ]
    # The view's item; neither the saved item again nor the owner's items for a standing.
    assert len(item_reads) == 1
    # The owning role, named by the template's sign-off table, came with the item.
    assert not [sql for sql in statements if sql.startswith('SELECT "signoff_role"')]
    # Whether a signature stands is asked in the statement that locks the deployment.
    assert not [sql for sql in statements if sql.startswith('SELECT 1 AS "a" FROM "signoff_')]
    # The status did not change: no progress bar is recounted or sent.
    assert not [sql for sql in statements if "COUNT(" in sql]
    assert b"overall-progress" not in response.content
    assert len(statements) <= NOTE_EDIT_SIGNED_MAX, "\n".join(statements)
    assert AuditEvent.objects.filter(action="item.updated", object_id=str(item.pk)).count() == 2


def test_a_role_granted_during_a_request_is_read_afresh(member, team):
    from readiness.checklists.teams import held_role_ids, is_member

    outsider = UserFactory()
    assert not is_member(team=team, user=outsider)
    assert held_role_ids(team=team, user=outsider) == frozenset()
    membership = give_role(outsider, team, "security")  # same user object, same "request"
    assert is_member(team=team, user=outsider)
    assert held_role_ids(team=team, user=outsider) == {membership.role_id}
    membership.delete()
    assert held_role_ids(team=team, user=outsider) == frozenset()
    team.members.remove(outsider)
    assert not is_member(team=team, user=outsider)
