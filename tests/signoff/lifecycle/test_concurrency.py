"""Everything that writes to one deployment, at once, from real threads with their own
database connections, through the pages and the API: no deadlock, no 5xx, every accepted
change in the history and on the audit chain, and the chain intact.

This is the lock order of docs/architecture.md under load: before it, item edits took the
item's row then the audit lock then the deployment's row while signing took the
deployment's row then the audit lock, and 81 of 628 requests of such a mix died of
"deadlock detected".
"""

import random
import threading
import time
from collections import Counter, defaultdict

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from readiness.api import tokens
from readiness.audit.models import AuditEvent
from readiness.audit.verification import verify_all
from readiness.checklists.models import ChecklistItem, DecisionSource, ItemChange, ItemStatus
from readiness.evidence.models import Evidence
from signoff.lifecycle import services as lifecycle
from signoff.signatures.models import Revocation, SignOff, Waiver
from tests.factories import make_deployment
from tests.readiness.api import samples
from tests.signoff.web.conftest import (
    client_for,
    in_days,
    item_form,
    revoke_url,
    sign_data,
    sign_url,
    waiver_url,
    withdraw_url,
)
from tests.signoff_helpers import ROLE_SLUGS, complete_items, signers_for

SECONDS = 8.0
ACCEPTED = {200, 201, 302}
# Refusals a request may meet in this mix: a form error, or a real conflict (409).
REFUSED = {400, 409}


class Mix:
    """Runs the workers for SECONDS and keeps every answer by kind."""

    def __init__(self):
        self.answers: dict[str, Counter] = defaultdict(Counter)
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + SECONDS

    def note(self, kind: str, response) -> int:
        with self.lock:
            self.answers[kind][response.status_code] += 1
            if response.status_code >= 500:
                self.errors.append(f"{kind}: {response.status_code} {response.content[:300]!r}")
        return response.status_code

    def run(self, workers) -> None:
        threads = [threading.Thread(target=self._loop, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 60)
        assert not any(thread.is_alive() for thread in threads), "a worker hangs (a lock wait?)"

    def _loop(self, worker) -> None:
        try:
            while time.monotonic() < self.deadline:
                worker(self)
        except Exception as exc:  # a crash of the test's own code must fail the test too
            with self.lock:
                self.errors.append(f"{worker.__name__}: {exc!r}")
        finally:
            connection.close()

    def accepted(self, kind: str) -> int:
        return sum(n for status, n in self.answers[kind].items() if status in ACCEPTED)


# serialized_rollback, like every transactional test here: the tests after it keep the
# migrations' data (roles, the default template).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_edits_signatures_waivers_targets_gates_and_verdicts_at_once(team):
    signers = signers_for(team)
    lead = signers["tech-lead"]
    deployment = make_deployment(user=lead, team=team)
    complete_items(deployment)
    # A few Security items stay open: they are what waivers are granted on.
    open_items = list(
        ChecklistItem.objects.filter(
            section__deployment=deployment, owner_role__slug="security"
        ).order_by("pk")[:3]
    )
    ChecklistItem.objects.filter(pk__in=[i.pk for i in open_items]).update(status=ItemStatus.OPEN)
    lifecycle.signoff_request(deployment=deployment, user=lead)
    edited = list(
        ChecklistItem.objects.filter(
            section__deployment=deployment, owner_role__slug="devops"
        ).order_by("pk")[:4]
    )
    token = tokens.token_create(user=lead, name="CI", scope="write")[1]
    api = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    base = f"/deployments/{deployment.pk}"
    clients = {slug: client_for(signers[slug]) for slug in ROLE_SLUGS}
    for client in clients.values():
        client.raise_request_exception = False

    # Two editors on the same few items: some edits lose the race and must get a 409.
    editors = [client_for(signers["devops"]) for _ in range(2)]
    for editor in editors:
        editor.raise_request_exception = False

    def item_edit(mix, client):
        item = ChecklistItem.objects.get(pk=random.choice(edited).pk)
        # In review, a change to a decided item needs a reason.
        form = item_form(item, note=f"checked at {time.monotonic():.6f}", reason="re-checked")
        mix.note("item edit", client.post(f"{base}/items/{item.pk}/", form))

    def editor_one(mix):
        item_edit(mix, editors[0])

    def editor_two(mix):
        item_edit(mix, editors[1])

    def signer(mix):
        slug = random.choice(("tech-lead", "devops", "product"))
        data = sign_data(user=signers[slug])
        mix.note("sign", clients[slug].post(sign_url(deployment, slug), data))

    def revoker(mix):
        active = (
            SignOff.objects.filter(deployment=deployment, revocation__isnull=True)
            .exclude(role__slug="security")
            .order_by("?")
            .first()
        )
        if active is None:
            time.sleep(0.05)
            return
        client = clients[active.role.slug]
        mix.note("revoke", client.post(revoke_url(deployment, active), {"reason": "re-check"}))

    def waiver(mix):
        client = clients["security"]
        item = random.choice(open_items)
        current = Waiver.objects.filter(item=item, withdrawn_at__isnull=True).first()
        if current is None:
            body = {"reason": "accepted for the launch", "expires_on": in_days(7)}
            mix.note("waiver", client.post(waiver_url(deployment, item), body))
        else:
            body = {"reason": "fixed now"}
            mix.note("withdraw", client.post(withdraw_url(deployment, current), body))

    def aws_target(mix):
        regions = random.choice(("us-east-1", "eu-west-1, us-east-1"))
        body = {"aws_account_id": "123456789012", "aws_regions": regions}
        mix.note("aws target", clients["tech-lead"].post(f"{base}/aws/", body))

    gate_client = Client(raise_request_exception=False)

    def gate(mix):
        mix.note("gate", gate_client.get(f"/api/v1/deployments/{deployment.pk}/gate", **api))

    evidence_client = Client(raise_request_exception=False)

    def verdicts(mix):
        # Uploaded evidence applies a machine verdict to "Unit Tests" (item_set_by_machine).
        covered = random.choice((500, 900))
        report = SimpleUploadedFile("c.xml", samples.cobertura(covered, 1000))
        data = {"kind": "cobertura", "file": report}
        mix.note(
            "verdict",
            evidence_client.post(f"/api/v1/deployments/{deployment.pk}/evidence", data, **api),
        )

    mix = Mix()
    mix.run([editor_one, editor_two, signer, revoker, waiver, aws_target, gate, verdicts])

    assert not mix.errors, mix.errors
    for kind, answers in mix.answers.items():
        assert set(answers) <= ACCEPTED | REFUSED, (kind, answers)
    assert mix.answers["item edit"][409] > 0, "two editors on one item never met"

    def events(action: str) -> int:
        return AuditEvent.objects.filter(deployment=deployment, action=action).count()

    # Every accepted change is in its table, its history and on the chain, exactly once.
    assert mix.accepted("item edit") > 0
    assert events("item.updated") == mix.accepted("item edit")
    assert ItemChange.objects.filter(
        item__section__deployment=deployment, source=DecisionSource.PERSON
    ).count() == mix.accepted("item edit")
    assert SignOff.objects.filter(deployment=deployment).count() == mix.accepted("sign")
    assert events("signoff.signed") == mix.accepted("sign")
    assert Revocation.objects.filter(signoff__deployment=deployment).count() == mix.accepted(
        "revoke"
    )
    assert events("signoff.revoked") == mix.accepted("revoke")
    assert events("waiver.granted") == mix.accepted("waiver")
    assert events("waiver.withdrawn") == mix.accepted("withdraw")
    assert events("deployment.aws_account_added") == 1  # the first save; the others change it
    assert events("deployment.aws_account_changed") == mix.accepted("aws target") - 1
    # The gate's answer is audited whichever it is (200 approved, 409 not yet).
    assert events("api.gate_checked") == sum(mix.answers["gate"].values())
    assert Evidence.objects.filter(deployment=deployment).count() == mix.accepted("verdict")
    assert events("evidence.uploaded") == mix.accepted("verdict")
    report = verify_all()
    assert report.ok, report.problems
