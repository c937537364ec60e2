"""The session and user of each request, read in SQL (signoff.teams.sessions, AccountBackend):
the same user the ORM reads, and every way a session ends still ends it at the next request.
Run on PostgreSQL and on SQLite (the embedded default), whose values need the ORM's
conversions (booleans, datetimes)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from signoff.teams.authentication import account_by_id
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def logged_in_client(user) -> Client:
    client = Client()
    assert client.post(reverse("login"), {"username": user.username, "password": PASSWORD})[
        "Location"
    ] == reverse("dashboard")
    return client


def request_user(client):
    """Who the next request is, and whether the page let it in."""
    response = client.get(reverse("dashboard"))
    return response.wsgi_request.user, response.status_code


def test_a_request_reads_the_user_the_orm_reads(member):
    client = logged_in_client(member)

    lazy, status = request_user(client)

    user = lazy._wrapped  # the middleware's SimpleLazyObject, loaded by the request
    stored = get_user_model().objects.get(pk=member.pk)
    assert status == 200 and user.is_authenticated
    assert type(user) is type(stored) and not user._state.adding
    assert user._state.db == stored._state.db
    for field in stored._meta.concrete_fields:
        mine, theirs = getattr(user, field.attname), getattr(stored, field.attname)
        assert (mine, type(mine)) == (theirs, type(theirs)), field.name
    assert user.last_login is not None and timezone.is_aware(user.last_login)
    assert user.is_active is True and user.is_superuser is False


def test_an_account_read_by_id_is_none_when_there_is_none(member):
    assert account_by_id(member.pk).username == "lee"
    assert account_by_id(str(member.pk)).username == "lee"
    assert account_by_id(member.pk + 1000) is None


def test_a_session_is_read_until_it_expires(member):
    client = logged_in_client(member)
    key = client.session.session_key
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert request_user(client)[0].is_authenticated

    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))

    user, status = request_user(client)
    assert not user.is_authenticated and status == 302


def test_a_session_deleted_from_the_database_ends_at_the_next_request(member):
    client = logged_in_client(member)
    assert request_user(client)[0].is_authenticated

    Session.objects.filter(pk=client.session.session_key).delete()

    user, status = request_user(client)
    assert not user.is_authenticated and status == 302


def test_a_logout_ends_the_session_for_a_copy_of_its_cookie(member):
    client = logged_in_client(member)
    copy = Client()  # the same cookie, as a second worker would see it
    name = settings.SESSION_COOKIE_NAME
    copy.cookies[name] = client.cookies[name].value
    assert request_user(copy)[0].is_authenticated

    client.post(reverse("logout"))

    assert not request_user(copy)[0].is_authenticated


def test_a_changed_password_ends_the_other_sessions(member):
    laptop, phone = logged_in_client(member), logged_in_client(member)
    phone_session = phone.session.session_key
    assert request_user(phone)[0].is_authenticated

    member.set_password("a-new-Passw0rd-entirely")
    member.save()

    assert not request_user(phone)[0].is_authenticated
    assert not request_user(laptop)[0].is_authenticated
    assert not Session.objects.filter(pk=phone_session).exists()  # flushed, as Django does


def test_a_deactivated_account_is_anonymous_at_its_next_request(member):
    client = logged_in_client(member)
    assert request_user(client)[0].is_authenticated

    get_user_model().objects.filter(pk=member.pk).update(is_active=False)

    user, status = request_user(client)
    assert not user.is_authenticated and status == 302
    assert SESSION_KEY in client.session  # kept, as ModelBackend keeps it, but no user


def test_another_users_session_is_not_read(member):
    other = UserFactory(username="kim")
    mine, theirs = logged_in_client(member), logged_in_client(other)

    assert request_user(mine)[0] == member
    assert request_user(theirs)[0] == other
