"""Operational: SSM Automation runbooks as supporting evidence for the "Runbook" item, whose
runbook lives in the repository where no AWS API can read it."""

from __future__ import annotations

from readiness.probes.base import Finding, ProbeContext, ProbeResult, Scope, Severity, Status, probe


@probe(
    key="operational.runbooks",
    section="Operational",
    item="Runbook",
    title=(
        "SSM Automation documents owned by the account (supporting evidence only: the runbook "
        "is docs/runbook.md in the repository)"
    ),
    actions=("ssm:ListDocuments",),
    scope=Scope.REGIONAL,
    severity=Severity.LOW,
    remediation=(
        "Keep the runbook in the repository (docs/runbook.md) and have a person confirm it "
        "on the item: no AWS API can read it. Automating its repeatable steps (restart, "
        "failover, scale out) as SSM Automation documents (`aws ssm create-document "
        "--document-type Automation --content file://restart.yaml --document-format YAML`) "
        "makes them one command and shows them here."
    ),
    supporting=True,
)
def runbooks(context: ProbeContext) -> ProbeResult:
    documents = list(
        context.paginate(
            "ssm",
            "list_documents",
            "DocumentIdentifiers",
            Filters=[
                {"Key": "DocumentType", "Values": ["Automation"]},
                {"Key": "Owner", "Values": ["Self"]},
            ],
        )
    )
    caveat = (
        "This does not verify the Runbook item: the runbook is docs/runbook.md in the "
        "repository, which AWS cannot see, so a person must check it"
    )
    facts = {"automation_documents": len(documents)}
    if not documents:
        return ProbeResult(
            Status.NOT_APPLICABLE,
            f"No SSM Automation document owned by the account in {context.region}. {caveat}",
            facts=facts,
        )
    return ProbeResult(
        Status.PASS,
        f"{len(documents)} SSM Automation document(s) owned by the account in "
        f"{context.region}. {caveat}",
        tuple(
            Finding(
                document["Name"],
                Status.PASS,
                f"Automation document, version {document.get('DocumentVersion', '?')}",
            )
            for document in documents
        ),
        facts,
    )
