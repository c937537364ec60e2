"""An audit append outside the transaction of its change could fork the chain: it raises."""

import pytest
from django.db import transaction

from readiness.audit.models import AuditEvent
from readiness.audit.services import audit_record
from readiness.audit.verification import verify_all


# Transactional, so no test transaction hides the missing one; the rollback restores the
# migrations' data (roles, the default template) for the tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_append_outside_a_transaction_is_refused(deployment):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError, match="outside a transaction"):
        audit_record(actor=None, action="test.outside", obj=deployment, deployment=deployment)
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_an_append_inside_one_is_written_and_chained(deployment):
    with transaction.atomic():
        event = audit_record(
            actor=None, action="test.inside", obj=deployment, deployment=deployment
        )
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert verify_all().ok
