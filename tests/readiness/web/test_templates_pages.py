"""Template pages: list and detail for everyone, Markdown import for staff, bad files."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from readiness.checklists import selectors
from readiness.checklists.models import ChecklistTemplate, TemplateItem
from tests.readiness.web.conftest import SEED, SEED_TITLE, is_full_page, template_rows, text, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


# Templates


def test_template_list_and_detail_are_open_to_every_signed_in_user(outsider_client, db):
    response = outsider_client.get(reverse("template_list"))
    assert response.status_code == 200
    assert "Production Readiness Checklist" in text(response)
    assert "Import from Markdown" not in text(response)
    template = selectors.default_template()
    response = outsider_client.get(reverse("template_detail", args=[template.pk]))
    assert response.status_code == 200
    assert text(response).count("<li><strong>") == 56


def test_template_list_offers_import_to_staff(staff_client):
    assert "Import from Markdown" in text(staff_client.get(reverse("template_list")))


@pytest.mark.parametrize("is_staff", [False, True], ids=["member", "staff-without-permission"])
def test_template_import_needs_the_permission_not_staff_status(client, member, team, is_staff):
    member.is_staff = is_staff
    member.save(update_fields=["is_staff"])
    client.force_login(member)
    response = client.get(reverse("template_import"))
    assert response.status_code == 403
    assert "needs the “Can import checklist templates” permission" in text(response)
    before = template_rows()
    response = upload(client, SEED.replace(SEED_TITLE, b"# Sneaky", 1))
    assert response.status_code == 403
    assert template_rows() == before


def test_template_import_page_is_shown_to_staff(staff_client):
    response = staff_client.get(reverse("template_import"))
    assert response.status_code == 200
    assert is_full_page(response)
    assert 'enctype="multipart/form-data"' in text(response)


def test_staff_import_of_a_new_checklist_creates_it_and_redirects_to_it(staff_client, staff):
    before = template_rows()
    response = upload(staff_client, SEED.replace(SEED_TITLE, b"# Platform Checklist", 1))
    template = ChecklistTemplate.objects.get(name="Platform Checklist")
    assert response.status_code == 302
    assert response["Location"] == reverse("template_detail", args=[template.pk])
    assert (template.version, template.is_default, template.created_by) == (1, False, staff)
    assert template_rows() == (before[0] + 1, before[1] + 9, before[2] + 56)
    page = staff_client.get(response["Location"])
    assert "Imported Platform Checklist v1." in text(page)


def test_the_name_field_overrides_the_files_title(staff_client):
    response = upload(staff_client, SEED, name="Renamed Checklist")
    template = ChecklistTemplate.objects.get(name="Renamed Checklist")
    assert response["Location"] == reverse("template_detail", args=[template.pk])
    assert template.version == 1


def test_reimporting_the_same_file_says_already_imported_and_adds_nothing(staff_client):
    source = SEED.replace(SEED_TITLE, b"# Platform Checklist", 1)
    first = upload(staff_client, source)
    before = template_rows()
    again = upload(staff_client, source)
    assert again.status_code == 302
    assert again["Location"] == first["Location"]
    assert template_rows() == before
    assert "Already imported: Platform Checklist v1." in text(staff_client.get(again["Location"]))


def test_reimporting_the_seed_finds_the_default_template(staff_client):
    before = template_rows()
    response = upload(staff_client, SEED)
    default = selectors.default_template()
    assert response["Location"] == reverse("template_detail", args=[default.pk])
    assert template_rows() == before


def test_importing_a_changed_file_makes_version_2(staff_client):
    source = SEED.replace(SEED_TITLE, b"# Platform Checklist", 1)
    upload(staff_client, source)
    changed = source.replace(
        b"## Reliability\n", b"## Reliability\n\n- [ ] **Chaos Day:** Run one a quarter\n", 1
    )
    response = upload(staff_client, changed)
    v2 = ChecklistTemplate.objects.get(name="Platform Checklist", version=2)
    assert response["Location"] == reverse("template_detail", args=[v2.pk])
    assert TemplateItem.objects.filter(section__template=v2).count() == 57
    assert ChecklistTemplate.objects.filter(name="Platform Checklist").count() == 2


MALFORMED = [
    pytest.param(
        b"# Broken\n\n- [ ] **Orphan:** before any section\n\n## Security\n\n"
        b"- [ ] **IAM:** least privilege\n",
        "line 3: a checklist item outside a section ('## Section')",
        id="item-outside-section",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] **IAM:** least privilege\n- [ ] **iam:** again\n",
        "line 6: duplicate item 'iam' in section 'Security' (first on line 5)",
        id="duplicate-item-title",
    ),
    pytest.param(
        b"# Broken\n\nJust prose, no headings at all.\n",
        "no sections found: a checklist needs '## Section' headings",
        id="no-sections",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] **IAM:** caf\xe9 least privilege\n",
        "line 5: the file is not UTF-8 text",
        id="not-utf8",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] IAM without a bold title\n",
        "line 5: a checklist item must read '- [ ] **Title:** description'",
        id="untitled-item",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n## Reliability\n\n- [ ] **Multi-AZ:** yes\n",
        "line 3: section 'Security' has no items",
        id="empty-section",
    ),
    pytest.param(
        b"# Broken\n\n## Security\n\n- [ ] **IAM:** x\x00y\n",
        "the file is binary, not Markdown text",
        id="nul-byte",
    ),
]


@pytest.mark.parametrize(("content", "error"), MALFORMED)
def test_malformed_markdown_is_400_names_the_problem_and_imports_nothing(
    staff_client, content, error
):
    before = template_rows()
    response = upload(staff_client, content)
    assert response.status_code == 400
    body = text(response)
    assert "Nothing was imported." in body
    assert escape(error) in body
    assert template_rows() == before


def test_a_file_over_the_upload_limit_is_400_and_imports_nothing(staff_client, settings):
    settings.TEMPLATE_UPLOAD_MAX_BYTES = 1024
    before = template_rows()
    response = upload(staff_client, SEED.replace(SEED_TITLE, b"# Too Big", 1))
    assert response.status_code == 400
    assert "Nothing was imported." in text(response)
    assert "the limit is 1,024 bytes" in text(response)
    assert template_rows() == before


def test_the_upload_limit_error_states_the_files_real_size(staff_client, settings):
    settings.TEMPLATE_UPLOAD_MAX_BYTES = 1024
    content = SEED.replace(SEED_TITLE, b"# Too Big", 1)
    response = upload(staff_client, content)
    assert response.status_code == 400
    assert f"the file is {len(content):,} bytes; the limit is 1,024 bytes" in text(response)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({}, "file", id="no-file"),
        pytest.param(
            {"file": SimpleUploadedFile("empty.md", b"", content_type="text/markdown")},
            "file",
            id="empty-file",
        ),
        pytest.param(
            {
                "file": SimpleUploadedFile("ok.md", SEED, content_type="text/markdown"),
                "name": "n" * 201,
            },
            "name",
            id="name-too-long",
        ),
    ],
)
def test_an_invalid_import_form_is_400_with_field_errors(staff_client, data, field):
    before = template_rows()
    response = staff_client.post(reverse("template_import"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert template_rows() == before
