"""The readiness app's models, for Django's registry; code imports them from their concern."""

from readiness.audit.models import AuditEvent
from readiness.checklists.models import (
    AwsAccount,
    AwsOrganizationSource,
    ChecklistItem,
    ChecklistTemplate,
    Deployment,
    DeploymentSection,
    ItemChange,
    PostDeploymentCheck,
    Team,
    TemplateItem,
    TemplateSection,
)
from readiness.evidence.models import Evidence, EvidenceVerdict
from readiness.outbox.models import OutboxMessage
from readiness.probe_runs.models import ProbeResult, ProbeRun

__all__ = [
    "AuditEvent",
    "AwsAccount",
    "AwsOrganizationSource",
    "ChecklistItem",
    "ChecklistTemplate",
    "Deployment",
    "DeploymentSection",
    "Evidence",
    "EvidenceVerdict",
    "ItemChange",
    "OutboxMessage",
    "PostDeploymentCheck",
    "ProbeResult",
    "ProbeRun",
    "Team",
    "TemplateItem",
    "TemplateSection",
]
