import json

import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status, registry
from tests.conftest import REGION
from tests.readiness.probes.helpers import found, run


def automation_document(aws, name: str, kind: str = "Automation") -> None:
    content = (
        {
            "schemaVersion": "0.3",
            "mainSteps": [{"name": "wait", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}],
        }
        if kind == "Automation"
        else {
            "schemaVersion": "2.2",
            "mainSteps": [
                {"name": "run", "action": "aws:runShellScript", "inputs": {"runCommand": ["true"]}}
            ],
        }
    )
    aws.client("ssm").create_document(
        Name=name, DocumentType=kind, DocumentFormat="JSON", Content=json.dumps(content)
    )


def test_runbooks_are_supporting_evidence_of_the_runbook_item():
    probe = registry()["operational.runbooks"]
    assert probe.supporting
    assert (probe.section, probe.item) == ("Operational", "Runbook")


def test_runbooks_list_owned_automation_documents_and_say_they_do_not_verify_the_item(
    aws, make_context
):
    automation_document(aws, "restart-api")
    automation_document(aws, "failover-db")
    automation_document(aws, "patch-hosts", kind="Command")
    result = run("operational.runbooks", make_context())
    assert result.status == Status.PASS, result
    assert set(found(result)) == {"restart-api", "failover-db"}
    assert result.summary.startswith(
        f"2 SSM Automation document(s) owned by the account in {REGION}"
    )
    assert "This does not verify the Runbook item" in result.summary
    assert "docs/runbook.md" in result.summary
    assert result.facts == {"automation_documents": 2}


def test_runbooks_not_applicable_without_automation_documents(aws, make_context):
    automation_document(aws, "patch-hosts", kind="Command")
    result = run("operational.runbooks", make_context())
    assert result.status == Status.NOT_APPLICABLE
    assert "This does not verify the Runbook item" in result.summary


# Errors


@pytest.mark.parametrize(
    ("key", "service", "responses", "failing", "expected"),
    [
        (
            "operational.runbooks",
            "ssm",
            [],
            "list_documents",
            "Access denied: the probe needs ssm:ListDocuments",
        ),
    ],
)
def test_refused_calls_become_error_results_naming_the_action(
    aws, make_context, key, service, responses, failing, expected
):
    context = make_context()
    with Stubber(context.client(service)) as stubber:
        for operation, response in responses:
            stubber.add_response(operation, response)
        stubber.add_client_error(failing, service_error_code="AccessDeniedException")
        result = run(key, context)
    assert result.status == Status.ERROR
    assert result.summary.startswith(expected), result.summary
