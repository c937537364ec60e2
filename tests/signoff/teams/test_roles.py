from collections import Counter
from io import StringIO

import pytest
from django.db import IntegrityError

from readiness.checklists.models import TemplateItem
from readiness.checklists.selectors import default_template
from readiness.checklists.services import template_import
from signoff.teams.models import Role, RoleMembership


@pytest.mark.django_db
def test_the_four_seed_roles_exist_in_the_seed_order():
    assert list(Role.objects.values_list("name", flat=True)) == [
        "Tech Lead",
        "Security",
        "DevOps",
        "Product",
    ]


@pytest.mark.django_db
def test_default_template_items_have_the_default_owner_roles():
    items = TemplateItem.objects.filter(section__template=default_template())
    owners = {
        (i.section.title, i.owner_role.name) for i in items.select_related("section", "owner_role")
    }
    assert owners == {
        ("Security", "Security"),
        ("Compliance", "Security"),
        ("Reliability", "DevOps"),
        ("Monitoring & Observability", "DevOps"),
        ("Cost Optimization", "DevOps"),
        ("Deployment", "DevOps"),
        ("Performance", "Tech Lead"),
        ("Testing", "Tech Lead"),
        ("Operational", "Tech Lead"),
    }
    assert Counter(i.owner_role.name for i in items) == {
        "DevOps": 24,
        "Tech Lead": 18,
        "Security": 14,
    }


@pytest.mark.django_db
def test_an_imported_template_gets_default_owners_for_known_sections_only():
    template = template_import(
        source="# T\n## Testing\n- [ ] **A:** x\n## Legal\n- [ ] **B:** y\n"
    ).template
    owners = {
        i.title: i.owner_role for i in TemplateItem.objects.filter(section__template=template)
    }
    assert owners["A"].name == "Tech Lead"
    assert owners["B"] is None


@pytest.mark.django_db
def test_a_user_holds_a_role_in_a_team_once(team, member):
    security = Role.objects.get(name="Security")
    RoleMembership.objects.create(team=team, user=member, role=security)
    with pytest.raises(IntegrityError):
        RoleMembership.objects.create(team=team, user=member, role=security)


@pytest.mark.django_db
def test_team_admin_manages_role_memberships_and_template_items_their_owner(admin_client, team):
    response = admin_client.get(f"/admin/readiness/team/{team.pk}/change/")
    assert response.status_code == 200
    assert "roles-TOTAL_FORMS" in response.content.decode()
    section = default_template().sections.get(title="Security")
    page = admin_client.get(
        f"/admin/readiness/templatesection/{section.pk}/change/"
    ).content.decode()
    assert 'name="items-0-owner_role"' in page
    assert 'name="items-0-title"' not in page  # the wording stays as imported


@pytest.mark.django_db
def test_seed_demo_gives_each_demo_user_their_role(settings, tmp_path):
    from django.core.management import call_command

    settings.DATA_DIR = tmp_path
    call_command("seed_demo", stdout=StringIO())
    held = dict(RoleMembership.objects.values_list("user__username", "role__name"))
    assert held == {
        "lead": "Tech Lead",
        "security": "Security",
        "devops": "DevOps",
        "product": "Product",
    }
