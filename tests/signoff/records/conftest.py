"""Fixtures shared by the record tests."""

import pytest


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
