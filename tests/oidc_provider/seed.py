"""Accounts and clients of the test provider, from a JSON document on stdin (idempotent).

{"users": [{"username", "password", "email", "first_name", "last_name", "groups"}],
 "clients": [{"client_id", "client_secret", "redirect_uris"}],
 "backdate_login": {"username": seconds}}
"""

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "op_settings")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.utils import timezone  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402


def main(spec: dict) -> dict:
    subjects = {}
    for entry in spec.get("users", []):
        user, _ = User.objects.get_or_create(username=entry["username"])
        user.email = entry.get("email", "")
        user.first_name = entry.get("first_name", "")
        user.last_name = entry.get("last_name", "")
        user.set_password(entry["password"])
        user.save()
        user.groups.set(Group.objects.get_or_create(name=name)[0] for name in entry["groups"])
        subjects[user.username] = str(user.pk)
    for entry in spec.get("clients", []):
        client = Application.objects.filter(client_id=entry["client_id"]).first() or Application(
            client_id=entry["client_id"]
        )
        client.name = entry["client_id"]
        client.client_secret = entry["client_secret"]
        client.client_type = Application.CLIENT_CONFIDENTIAL
        client.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
        client.algorithm = Application.RS256_ALGORITHM
        client.redirect_uris = " ".join(entry["redirect_uris"])
        client.skip_authorization = True
        client.save()
    for username, seconds in spec.get("backdate_login", {}).items():
        User.objects.filter(username=username).update(
            last_login=timezone.now() - timedelta(seconds=seconds)
        )
    return {"subjects": subjects}


if __name__ == "__main__":
    print(json.dumps(main(json.load(sys.stdin))))
