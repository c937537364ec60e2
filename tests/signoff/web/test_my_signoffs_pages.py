"""My sign-offs a page at a time: what waits first, bad page numbers handled as on the
dashboard, and queries flat in the number of deployments and stale rows."""

import pytest
from django.urls import reverse

from readiness.checklists.models import ChecklistItem, Deployment, DeploymentState
from readiness.probe_runs.models import ProbeResult, ProbeRun
from readiness.probe_runs.services import apply_run
from signoff.lifecycle import services
from signoff.signatures import waiting
from tests.factories import TeamFactory, UserFactory, make_deployment
from tests.signoff.web.conftest import client_for, text
from tests.signoff.web.test_query_counts import queries_of
from tests.signoff_helpers import complete_items, give_role, sign

pytestmark = pytest.mark.django_db

# My sign-offs: session and user; the memberships, the roles and the templates (who signs
# what); the paginator's count, the page's ids and their rows; the page's standings (roles,
# items, latest probe results, CI evidence, waivers in force, sign-offs, AWS accounts, what
# the stale ones approved); the findings of every stale row's failing probes and the
# histories of their changed items, once for the page; the user's own signatures.
MY_SIGNOFFS_PAGE_MAX = 20


def fail_mfa_by_probe(deployment) -> None:
    """A re-probe finds MFA off: the Security signature on it turns stale, with drift."""
    mfa = ChecklistItem.objects.get(section__deployment=deployment, title="MFA")
    run = ProbeRun.objects.create(deployment=deployment, state="succeeded", total=1, completed=1)
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
        findings=[{"id": "ci-admin", "status": "fail", "reason": "no MFA device"}],
    )
    apply_run(run)


def in_review(user, team, count: int, prefix: str) -> list[Deployment]:
    """`count` deployments in review: every third signed by Security and then made stale by
    a failing probe, every third signed and still holding, the rest unsigned."""
    made = []
    for number in range(count):
        deployment = make_deployment(user=user, team=team, service=f"{prefix}-{number:02}")
        services.signoff_request(deployment=deployment, user=user)
        if number % 3:
            complete_items(deployment, "security")
            sign(deployment, user, "security")
        if number % 3 == 1:
            fail_mfa_by_probe(deployment)
        made.append(deployment)
    return made


@pytest.fixture
def security_of(db):
    def make(name: str):
        user = UserFactory(username=name)
        team = TeamFactory(name=name.title(), slug=name)
        give_role(user, team, "security")
        return user, team

    return make


def page(user, number=None):
    client = client_for(user)
    url = reverse("my_signoffs") + (f"?page={number}" if number is not None else "")
    client.get(url)  # warm the session
    return lambda: client.get(url)


def test_my_signoffs_queries_stay_flat_from_3_to_40_deployments_first_and_last_page(
    security_of, django_assert_max_num_queries
):
    few_user, few_team = security_of("few")
    many_user, many_team = security_of("many")
    in_review(few_user, few_team, 3, "few")
    in_review(many_user, many_team, 40, "many")
    few_count, few = queries_of(page(few_user))
    first_count, first = queries_of(page(many_user))
    last_count, last = queries_of(page(many_user, 2))
    assert few.status_code == first.status_code == last.status_code == 200
    assert first.context["page"].paginator.num_pages == 2
    assert len(first.context["page"].object_list) == waiting.PAGE_SIZE
    assert len(last.context["page"].object_list) == 40 - waiting.PAGE_SIZE
    stale = [s for _, s in first.context["waiting"] if s.status == "stale"]
    assert stale and all("iam.mfa [global] now fail" in " ".join(s.changes) for s in stale)
    assert few_count == first_count == last_count
    request = page(many_user, 2)
    with django_assert_max_num_queries(MY_SIGNOFFS_PAGE_MAX):
        request()


def test_what_waits_comes_first_and_holding_signatures_show_no_row(security_of):
    user, team = security_of("sec")
    deployments = in_review(user, team, 6, "svc")
    response = page(user)()
    rows = [(d.service, s.status) for d, s in response.context["waiting"]]
    # Unsigned first (0 and 3), then by planned date and id: the stale ones (1 and 4); the
    # holding ones (2 and 5) are counted, not listed.
    assert rows == [
        ("svc-00", "missing"),
        ("svc-03", "missing"),
        ("svc-01", "stale"),
        ("svc-04", "stale"),
    ]
    assert response.context["holding"] == 2
    body = text(response)
    assert "svc-02" not in body.split('id="signed-title"')[0]
    assert "your roles' signatures still hold on 2 more deployments" in body
    assert deployments[1].state == DeploymentState.IN_REVIEW


def test_pages_link_to_each_other_and_bad_page_numbers_never_fail(security_of, monkeypatch):
    monkeypatch.setattr(waiting, "PAGE_SIZE", 2)
    user, team = security_of("sec")
    for number in range(5):
        deployment = make_deployment(user=user, team=team, service=f"svc-{number}")
        services.signoff_request(deployment=deployment, user=user)

    def services_on(number):
        response = page(user, number)()
        assert response.status_code == 200
        return [d.service for d, _ in response.context["waiting"]], text(response)

    first, body = services_on(None)
    assert first == ["svc-0", "svc-1"]
    assert 'href="?page=2" rel="next"' in body
    assert "Page 1 of 3 · 5 deployments in review in your roles" in body
    middle, body = services_on(2)
    assert middle == ["svc-2", "svc-3"]
    assert 'href="?page=1" rel="prev"' in body and 'href="?page=3" rel="next"' in body
    assert services_on(3)[0] == ["svc-4"]
    # As on the dashboard: past the end is the last page, anything else the first.
    for bad in ("999999999999999999999", "-1", "0"):
        assert services_on(bad)[0] == ["svc-4"], bad
    for bad in ("x", "", "1.5", "%00"):
        assert services_on(bad)[0] == ["svc-0", "svc-1"], bad


def test_a_page_where_every_signature_holds_says_so_without_the_empty_state(
    security_of, monkeypatch
):
    monkeypatch.setattr(waiting, "PAGE_SIZE", 1)
    user, team = security_of("sec")
    for number in range(2):
        deployment = make_deployment(user=user, team=team, service=f"svc-{number}")
        services.signoff_request(deployment=deployment, user=user)
        if number:
            complete_items(deployment, "security")
            sign(deployment, user, "security")
    body = text(page(user, 2)())
    assert "Nothing on this page waits for you." in body
    assert "Nothing waits for your signature." not in body
    assert "still hold on 1 deployment." in body


def test_only_roles_the_user_holds_in_that_team_and_that_sign_the_template_count(
    security_of,
):
    user, _ = security_of("sec")
    other = TeamFactory(name="Other", slug="other", members=[user])  # member, no role
    deployment = make_deployment(user=user, team=other, service="elsewhere")
    services.signoff_request(deployment=deployment, user=user)
    response = page(user)()
    assert response.context["waiting"] == []
    assert response.context["page"].paginator.count == 0
    assert "Nothing waits for your signature." in text(response)


def test_a_stale_row_words_its_first_two_changes_and_counts_the_rest(security_of):
    user, team = security_of("sec")
    deployment = make_deployment(user=user, team=team, service="svc")
    services.signoff_request(deployment=deployment, user=user)
    complete_items(deployment, "security")
    sign(deployment, user, "security")
    owned = ChecklistItem.objects.filter(
        section__deployment=deployment, owner_role__slug="security"
    ).order_by("pk")[:5]
    assert len(owned) == 5
    for item in owned:  # five note changes: five change lines
        ChecklistItem.objects.filter(pk=item.pk).update(note=f"changed {item.title}")
    response = page(user)()
    [(_, standing)] = response.context["waiting"]
    assert standing.status == "stale" and standing.change_count == 5
    body = text(response)
    full = [str(line) for line in standing.change_lines]  # every line, made on demand
    assert len(full) == 5
    assert all(line.split(" — ")[0].split(": ", 1)[1] in body for line in full[:2])
    assert not any(f"changed {item.title}" in body for item in owned[2:])
    assert "and 3 more" in body
