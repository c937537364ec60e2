"""The signed record, downloaded from an approved deployment in a real browser, verifies with
`manage.py verify_record` and fails verification after one changed byte."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect
from pypdf import PdfReader

from signoff.records import services as records
from tests.factories import PASSWORD, TeamFactory, make_deployment
from tests.signoff_helpers import approve_all, signers_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WAIT = 10_000


@pytest.fixture
def record_settings(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.SIGNING_KEY_FILE = tmp_path / "signing" / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "signing" / "cert.pem"
    call_command("create_signing_cert", "--common-name", "Readiness e2e", stdout=io.StringIO())
    return tmp_path


def verify_command(path, settings_dir) -> subprocess.CompletedProcess:
    """`manage.py verify_record` as an auditor runs it: a separate process, same database."""
    from django.conf import settings
    from django.db import connection

    env = {
        "DATA_DIR": str(settings.DATA_DIR),
        "SIGNING_KEY_FILE": str(settings_dir / "signing" / "key.pem"),
        "SIGNING_CERT_FILE": str(settings_dir / "signing" / "cert.pem"),
        "PATH": "/usr/bin:/bin",
    }
    if connection.vendor == "postgresql":
        params = connection.settings_dict
        env["DATABASE_URL"] = (
            f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
    return subprocess.run(
        [sys.executable, "manage.py", "verify_record", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_downloaded_record_verifies_and_a_changed_byte_fails(
    page, live_server, record_settings, tmp_path
):
    team = TeamFactory(name="Payments", slug="payments")
    signers = signers_for(team)
    deployment = make_deployment(user=signers["tech-lead"], team=team)
    approve_all(deployment, signers)
    assert deployment.state == "approved"
    # What the worker does after the approval commits (here Playwright's event loop looks
    # running in this thread, which signing must cope with).
    record = records.record_generate(deployment_id=deployment.pk)
    assert record.pades_signed

    page.set_default_timeout(WAIT)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(signers["security"].username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Deployments")).to_be_visible(timeout=WAIT)
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")
    link = page.get_by_role("link", name="Download signed record 1")
    expect(link).to_be_visible(timeout=WAIT)
    with page.expect_download(timeout=WAIT) as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.endswith("-record-1.pdf")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    data = saved.read_bytes()
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) > 1
    text = "\n".join(p.extract_text() for p in reader.pages)
    for signer in signers.by_slug.values():
        assert signer.get_full_name() in text
    assert str(record.record_id) in text

    valid = verify_command(saved, record_settings)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "valid" in valid.stdout.lower()

    # One byte changed inside the document (not its trailing signature): verification fails.
    tampered = bytearray(data)
    position = data.index(b"/Producer") if b"/Producer" in data else len(data) // 3
    tampered[position + 1] ^= 0x01
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(bytes(tampered))
    invalid = verify_command(changed, record_settings)
    assert invalid.returncode != 0, invalid.stdout
