"""The static files' storage keeps each file's URL once worked out: the same URL whitenoise's
manifest storage gives, hashed or (DEBUG) not, and forgets them when collectstatic makes a
new manifest."""

import json

import pytest
from whitenoise.storage import CompressedManifestStaticFilesStorage

from readiness.project.static_storage import StaticFilesStorage

MANIFEST = {"paths": {"css/app.css": "css/app.0123456789ab.css"}, "version": "1.1", "hash": "x"}


def manifested(root, storage_class=StaticFilesStorage):
    (root / "staticfiles.json").write_text(json.dumps(MANIFEST))
    return storage_class(location=str(root), base_url="/static/")


def test_a_files_url_is_the_manifests_each_time_and_unhashed_under_debug(tmp_path, settings):
    storage = manifested(tmp_path)
    hashed = manifested(tmp_path, CompressedManifestStaticFilesStorage).url("css/app.css")
    assert hashed == "/static/css/app.0123456789ab.css"
    assert storage.url("css/app.css") == hashed
    assert storage.url("css/app.css") == hashed
    settings.DEBUG = True
    assert storage.url("css/app.css") == "/static/css/app.css"
    settings.DEBUG = False
    assert storage.url("css/app.css") == hashed


def test_collectstatic_forgets_the_urls_of_the_manifest_it_replaces(tmp_path):
    storage = manifested(tmp_path)
    assert storage.url("css/app.css") == "/static/css/app.0123456789ab.css"
    list(storage.post_process({}, dry_run=False))  # a collectstatic that found no file
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        storage.url("css/app.css")
