"""The checklist page, an item's history, and the snapshot rule (templates never reach back)."""

import pytest
from django.urls import reverse

from readiness.checklists.models import ChecklistTemplate, ItemStatus, TemplateItem, TemplateSection
from tests.readiness.web.conftest import (
    HTMX,
    SEED,
    checklist,
    detail_url,
    is_full_page,
    item_of,
    item_url,
    save_item,
    text,
    upload,
)

pytestmark = pytest.mark.django_db


def history_url(deployment, item) -> str:
    return reverse("item_history", args=[deployment.pk, item.pk])


# The checklist page


def test_checklist_page_shows_every_item_and_the_overall_progress(member_client, deployment):
    response = member_client.get(detail_url(deployment))
    assert response.status_code == 200
    assert is_full_page(response)
    body = text(response)
    assert body.count('<li class="item-row"') == 56
    assert 'id="overall-progress"' in body
    assert "0% complete" in body
    assert "hx-swap-oob" not in body


# Item history


def test_item_history_lists_changes_newest_first_with_who_and_statuses(
    member_client, member, colleague, deployment
):
    save_item(item_of(deployment), member, status=ItemStatus.FAILED, note="first-edit")
    save_item(item_of(deployment), colleague, status=ItemStatus.DONE, note="second-edit")
    save_item(item_of(deployment), member, note="third-edit")
    item = item_of(deployment)
    response = member_client.get(history_url(deployment, item))
    assert response.status_code == 200
    assert is_full_page(response)
    assert [change.version for change in response.context["changes"]] == [4, 3, 2]
    body = text(response)
    positions = [body.index(note) for note in ("third-edit", "second-edit", "first-edit")]
    assert positions == sorted(positions)
    assert "Kim Ode" in body and "Lee Tran" in body
    assert "Open → <strong>Failed</strong>" in body
    assert "Failed → <strong>Done</strong>" in body
    assert "Done → <strong>Done</strong>" in body


def test_item_history_htmx_returns_only_the_changes_fragment(member_client, member, deployment):
    save_item(item_of(deployment), member, status=ItemStatus.DONE)
    item = item_of(deployment)
    response = member_client.get(history_url(deployment, item), headers=HTMX)
    assert response.status_code == 200
    assert not is_full_page(response)
    assert text(response).lstrip().startswith('<div id="item-changes">')
    assert "Open → <strong>Done</strong>" in text(response)


def test_item_history_of_an_untouched_item_says_so(member_client, deployment, item):
    response = member_client.get(history_url(deployment, item))
    assert "No changes yet" in text(response)


# The snapshot rule


def test_editing_or_deleting_template_rows_never_changes_an_existing_checklist(
    member_client, deployment
):
    before = checklist(deployment)
    template = deployment.template
    TemplateItem.objects.filter(section__template=template, title="IAM Policies").update(
        title="Renamed", description="Rewritten"
    )
    TemplateItem.objects.filter(section__template=template, title="MFA").delete()
    TemplateSection.objects.filter(template=template, title="Security").update(title="Sec")
    assert checklist(deployment) == before
    body = text(member_client.get(detail_url(deployment)))
    assert body.count('<li class="item-row"') == 56
    assert "Renamed" not in body and "MFA" in body
    iam = text(member_client.get(item_url(deployment, item_of(deployment))))
    assert "All roles follow least privilege principle" in iam
    assert "Rewritten" not in iam


def test_importing_a_new_template_version_never_changes_an_existing_checklist(
    client, staff, member, deployment
):
    before = checklist(deployment)
    client.force_login(staff)
    changed = SEED.replace(b"least privilege principle", b"zero trust", 1)
    response = upload(client, changed)
    assert response.status_code == 302
    new = ChecklistTemplate.objects.get(name="Production Readiness Checklist", version=2)
    renamed = TemplateItem.objects.get(section__template=new, title="IAM Policies")
    assert renamed.description == "All roles follow zero trust"
    deployment.refresh_from_db()
    assert deployment.template.version == 1
    assert checklist(deployment) == before
    client.force_login(member)
    body = text(client.get(item_url(deployment, item_of(deployment))))
    assert "All roles follow least privilege principle" in body
    assert "zero trust" not in body
