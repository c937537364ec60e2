"""The form pages' fields (templates/includes/form_fields.html): every help text and error a
widget's aria-describedby names (Django's <id>_helptext and <id>_error) is on the page, so a
screen reader reads it with the field."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.readiness.web.conftest import create_form, upload

pytestmark = pytest.mark.django_db


def described_and_missing(response) -> tuple[set[str], set[str]]:
    html = response.content.decode()
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    references = re.findall(r'aria-describedby="([^"]+)"', html)
    named = {ref for refs in references for ref in refs.split()}
    return named, named - ids


def test_every_help_text_and_error_a_field_names_is_on_the_page(
    client, member, team, deployment, staff
):
    client.force_login(member)
    aws = reverse("deployment_aws", args=[deployment.pk])
    organization = reverse("deployment_aws_organization", args=[deployment.pk])
    create = reverse("deployment_create")
    tokens = reverse("token_list")
    pages = {
        "AWS target": client.get(aws),
        "AWS target, refused": client.post(
            aws, {"aws_account_id": "12", "aws_regions": "mars-1", "aws_external_id": "x"}
        ),
        "AWS Organizations, refused": client.post(organization, {"org_role_arn": "nope"}),
        "new deployment": client.get(create),
        "new deployment, refused": client.post(
            create, {**create_form(team), "service": "", "version": ""}
        ),
        "API tokens": client.get(tokens),
        "API tokens, refused": client.post(tokens, {"name": ""}),
    }
    client.force_login(staff)
    pages["template import"] = client.get(reverse("template_import"))
    pages["template import, refused"] = upload(client, b"", name="")

    described, missing = set(), []
    for name, response in pages.items():
        assert response.status_code in (200, 400), (name, response.status_code)
        named, absent = described_and_missing(response)
        described |= {f"{name}: {ref}" for ref in named}
        missing += [f"{name}: {ref}" for ref in sorted(absent)]
    assert not missing, "\n".join(missing)
    # Help texts and errors on every page: the check above had something to check.
    assert sum(ref.endswith("_error") for ref in described) >= 5, described
    assert sum(ref.endswith("_helptext") for ref in described) >= 5, described


def test_the_public_verify_page_shows_a_refused_files_error_at_the_field():
    url = reverse("record_verify")
    client = Client()  # anyone may verify
    empty = SimpleUploadedFile("record.pdf", b"", content_type="application/pdf")
    pages = {"GET": client.get(url), "refused": client.post(url, {"file": empty})}
    assert pages["refused"].status_code == 400
    html = pages["refused"].content.decode()
    assert '<small class="error" id="id_file_error">The file is empty.</small>' in html
    assert 'aria-describedby="id_file_helptext id_file_error"' in html
    for name, response in pages.items():
        named, missing = described_and_missing(response)
        assert "id_file_helptext" in named, name
        assert not missing, (name, missing)
