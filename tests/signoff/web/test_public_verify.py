"""The public record verification page (RECORD_VERIFY_PUBLIC): anyone may upload a record
and learn what the file holds and whether it is still its deployment's latest record; only
members of the deployment's team see the deployment's link and today's database beside it.
Uploads without a login are limited per address; `manage.py verify_record` says the same
about supersession."""

import datetime
import io
import re
import uuid
from io import StringIO

import pypdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from readiness.checklists import services as readiness_services
from readiness.checklists.models import ChecklistItem, ItemStatus
from signoff.records.models import SignedRecord
from signoff.records.selectors import record_standing
from signoff.records.services import record_generate
from tests.readiness.project import test_settings as settings_test
from tests.signoff_helpers import approve_all, sign, signers_for

URL = "/records/verify/"
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def fresh_rate_limit(settings):
    """A key prefix of this test's own: counts left in the shared Redis by an earlier test or
    run (same address, same window) must not decide this one."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl:{uuid.uuid4().hex}:"


@pytest.fixture
def signing_key(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SIGNING_KEY_FILE = tmp_path / "key.pem"
    settings.SIGNING_CERT_FILE = tmp_path / "cert.pem"
    settings.SIGNING_KEY_PASSWORD = ""
    settings.SIGNING_PKCS12_FILE = None
    settings.SIGNING_TRUST_ROOTS = []
    call_command(
        "create_signing_cert", "--common-name", "Readiness public verify", stdout=StringIO()
    )


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


@pytest.fixture
def signers(team):
    return signers_for(team)


@pytest.fixture
def first_record(deployment, signers, signing_key, media) -> SignedRecord:
    approve_all(deployment, signers)
    return record_generate(deployment_id=deployment.pk)


def second_record(deployment, signers) -> SignedRecord:
    """A change after approval, approved again: the deployment's next record."""
    item = ChecklistItem.objects.get(section__deployment=deployment, title="Backup Strategy")
    readiness_services.item_update(
        item=item,
        user=signers["devops"],
        expected_version=item.version,
        status=ItemStatus.DONE,
        note="restore drill passed",
        evidence_url="",
        na_reason="",
        reason="the drill ran after approval",
    )
    sign(deployment, signers["devops"], "devops")
    record = record_generate(deployment_id=deployment.pk)
    assert record.number == 2
    return record


def stand_in_record(deployment, number: int) -> SignedRecord:
    """A stored record's row alone: its standing depends on the row, not on the file."""
    return SignedRecord.objects.create(
        deployment=deployment,
        record_id=uuid.uuid4(),
        number=number,
        deployment_state="approved",
        state_digest=f"{number:064d}",
        file=f"records/stand-in-{number}.pdf",
        sha256=f"{number:064x}",
        size_bytes=1,
        page_size="A4",
        created_at=timezone.now(),
    )


def upload(client, data: bytes, **headers):
    file = SimpleUploadedFile("record.pdf", data, content_type="application/pdf")
    return client.post(URL, {"file": file}, headers=headers)


def text(response) -> str:
    return response.content.decode()


def in_utc(moment: datetime.datetime) -> str:
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"


# --- Anyone may verify --------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_sees_the_form():
    response = Client().get(URL)

    assert response.status_code == 200
    assert b'type="file"' in response.content


def test_anonymous_upload_of_the_latest_record_is_valid_and_latest(first_record):
    response = upload(Client(), first_record.file.read())

    body = text(response)
    assert response.status_code == 200
    assert "✓ Valid — an unaltered record from this server" in body
    assert "Latest:" in body and "latest record of its deployment (record 1)" in body
    assert "Superseded" not in body
    assert "Readiness public verify" in body  # the signer certificate's subject
    assert re.search(r"<dt>PAdES level</dt><dd>B-B</dd>", body)
    assert str(first_record.record_id) in body


def test_anonymous_upload_of_a_superseded_record_names_the_one_that_replaced_it(
    first_record, deployment, signers
):
    second = second_record(deployment, signers)

    response = upload(Client(), first_record.file.read())

    body = text(response)
    assert response.status_code == 200
    assert "✓ Valid" in body
    assert "Superseded:" in body
    assert f"superseded by record 2 of this deployment on {in_utc(second.created_at)}" in body
    assert "no longer the latest" in body
    later = upload(Client(), second.file.read())
    assert "latest record of its deployment (record 2)" in text(later)


def test_anonymous_sees_what_the_file_holds_but_not_the_database(first_record, deployment):
    response = upload(Client(), first_record.file.read())

    body = text(response)
    assert response.status_code == 200
    assert "What the record says" in body  # read from the file
    assert reverse("deployment_detail", args=[deployment.pk]) not in body
    assert "Today&#x27;s database" not in body and "Today's database" not in body
    assert 'id="database-agrees"' not in body
    assert "Stored record" not in body
    assert f"(team {deployment.team.name})" not in body


def test_a_member_also_gets_the_deployment_link_and_the_database(
    first_record, deployment, member_client
):
    response = upload(member_client, first_record.file.read())

    body = text(response)
    assert response.status_code == 200
    assert f'href="{reverse("deployment_detail", args=[deployment.pk])}"' in body
    assert 'id="database-agrees"' in body
    assert f"(team {deployment.team.name})" in body
    assert "latest record of its deployment (record 1)" in body


def test_a_member_of_another_team_gets_the_public_report(first_record, deployment, outsider):
    client = Client()
    client.force_login(outsider)

    body = text(upload(client, first_record.file.read()))

    assert "✓ Valid" in body
    assert reverse("deployment_detail", args=[deployment.pk]) not in body
    assert 'id="database-agrees"' not in body


def test_a_file_claiming_a_stored_record_tells_anonymous_nothing_the_file_does_not(
    first_record, deployment, member
):
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": f"Record {first_record.record_id}"})
    out = io.BytesIO()
    writer.write(out)

    anonymous = upload(Client(), out.getvalue())

    body = text(anonymous)
    assert anonymous.status_code == 200
    assert "✗ Not valid" in body
    assert f"It claims to be record {first_record.record_id}" in body
    assert str(deployment) not in body and deployment.team.name not in body
    member_client = Client()
    member_client.force_login(member)
    assert str(deployment) in text(upload(member_client, out.getvalue()))


def test_an_htmx_upload_answers_with_the_panel_for_anonymous_too(first_record):
    response = upload(Client(), first_record.file.read(), **HTMX)

    body = text(response)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="verify-panel">')
    assert "✓ Valid" in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"<html>surely a pdf</html>", "not a PDF", id="not-a-pdf"),
        pytest.param(b"", "The file is empty.", id="empty"),
        pytest.param(b"%PDF-1.7\n" + b"0" * 2000, "the limit is 1000", id="too-big"),
    ],
)
def test_bad_input_is_400_for_anonymous_too(settings, data, message):
    settings.RECORD_VERIFY_MAX_BYTES = 1000

    response = upload(Client(), data)

    assert response.status_code == 400
    assert message in text(response)


def test_anonymous_post_works_with_the_csrf_token_of_the_form_and_not_without(first_record):
    client = Client(enforce_csrf_checks=True)
    form = client.get(URL)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(form)).group(1)
    data = first_record.file.read()

    response = client.post(
        URL, {"file": SimpleUploadedFile("record.pdf", data), "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 200
    assert "✓ Valid" in text(response)
    refused = client.post(URL, {"file": SimpleUploadedFile("record.pdf", data)})
    assert refused.status_code == 403


# --- RECORD_VERIFY_PUBLIC=false -----------------------------------------------------------


@pytest.mark.django_db
def test_the_setting_decides_whether_anonymous_is_sent_to_login(settings, member_client):
    login = f"{reverse('login')}?next={URL}"
    settings.RECORD_VERIFY_PUBLIC = False

    assert Client().get(URL)["Location"] == login
    posted = upload(Client(), b"%PDF-1.7")
    assert posted.status_code == 302 and posted["Location"] == login
    assert member_client.get(URL).status_code == 200
    settings.RECORD_VERIFY_PUBLIC = True
    assert Client().get(URL).status_code == 200


# --- The rate limit -----------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_posts_over_the_rate_are_429_with_a_message(settings, member_client):
    # A day's window: a short one could roll over between the posts and reset the count.
    settings.RECORD_VERIFY_RATE = "2/d"
    anonymous = Client()
    assert [upload(anonymous, b"").status_code for _ in range(2)] == [400, 400]

    refused = upload(anonymous, b"")

    assert refused.status_code == 429
    assert "Too many verifications from your address" in text(refused)
    assert 0 < int(refused["Retry-After"]) <= 86400 + 5
    fragment = upload(anonymous, b"", **HTMX)
    assert fragment.status_code == 429
    assert text(fragment).lstrip().startswith('<div id="verify-panel">')
    assert "Too many verifications" in text(fragment)
    # The page itself, and people who log in, are not limited.
    assert anonymous.get(URL).status_code == 200
    assert upload(member_client, b"").status_code == 400


@pytest.mark.django_db
def test_the_rate_is_counted_per_client_address(settings):
    settings.RECORD_VERIFY_RATE = "1/d"
    first = Client(REMOTE_ADDR="192.0.2.10")
    assert upload(first, b"").status_code == 400
    assert upload(first, b"").status_code == 429

    assert upload(Client(REMOTE_ADDR="192.0.2.11"), b"").status_code == 400


@pytest.mark.django_db
def test_clients_with_no_address_share_one_count_instead_of_a_500(settings):
    # Behind a proxy on a Unix socket REMOTE_ADDR is empty.
    settings.RECORD_VERIFY_RATE = "1/d"
    assert upload(Client(REMOTE_ADDR=""), b"").status_code == 400
    assert upload(Client(REMOTE_ADDR=""), b"").status_code == 429


def test_an_unreachable_rate_limit_store_lets_the_verification_through(
    settings, first_record, caplog
):
    # Nothing listens on port 1: the counter's Redis is down.
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }

    response = upload(Client(), first_record.file.read())

    assert response.status_code == 200
    assert "✓ Valid" in text(response)
    assert "rate limit unavailable" in caplog.text


@pytest.mark.parametrize("value", ["20", "0/m", "20/0m"])
def test_a_bad_rate_stops_start_up_naming_it(tmp_path, value):
    environment = settings_test._environment(tmp_path / "data", RECORD_VERIFY_RATE=value)

    result = settings_test._manage(environment, "check")

    assert result.returncode != 0
    assert "RECORD_VERIFY_RATE" in result.stderr.strip().splitlines()[-1], result.stderr


# --- The standing selector and the command ------------------------------------------------


@pytest.mark.django_db
def test_record_standing_takes_one_query_however_many_records(
    deployment, django_assert_num_queries
):
    first = stand_in_record(deployment, 1)
    for number in range(2, 6):
        stand_in_record(deployment, number)

    with django_assert_num_queries(1):
        standing = record_standing(first)

    assert not standing.latest
    assert standing.superseded_by_number == 2 and standing.latest_number == 5
    assert "superseded by record 2 of this deployment on" in standing.summary
    assert "the latest is record 5" in standing.summary
    newest = SignedRecord.objects.get(deployment=deployment, number=5)
    with django_assert_num_queries(1):
        assert record_standing(newest).latest


def run_verify_record(path) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_record", str(path), stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_verify_record_says_a_record_was_superseded(first_record, deployment, signers, tmp_path):
    second = second_record(deployment, signers)
    old, new = tmp_path / "record-1.pdf", tmp_path / "record-2.pdf"
    old.write_bytes(first_record.file.read())
    new.write_bytes(second.file.read())

    code, output = run_verify_record(old)

    assert code == 0  # still a valid file
    assert "Verdict: VALID" in output
    assert f"superseded by record 2 of this deployment on {in_utc(second.created_at)}" in output
    assert "still valid as a file, but not the latest" in output
    code, output = run_verify_record(new)
    assert code == 0
    assert "the latest record of its deployment (record 2)" in output
