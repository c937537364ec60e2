"""Fixtures shared by the record tests."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory):
    """A self-signed key and certificate made by `create_signing_cert`, once per run."""
    directory = tmp_path_factory.mktemp("signing")
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    call_command(
        "create_signing_cert",
        "--key-file",
        str(key_file),
        "--cert-file",
        str(cert_file),
        stdout=StringIO(),
    )
    return key_file, cert_file


@pytest.fixture
def media(settings, tmp_path):
    """Stored files (records, the audit anchor log) in a folder of this test's own."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"
