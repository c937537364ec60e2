"""The issue's "done when": a pipeline with only curl creates a deployment, uploads coverage
and a Trivy report, triggers probes, and is refused by the gate until the four roles have
signed, then allowed. Runs the real server (live_server) and the real curl binary."""

import json
import subprocess

import pytest

from readiness.api import tokens
from readiness.checklists.models import ChecklistItem, Deployment, ItemStatus
from tests.readiness.api import samples
from tests.signoff_helpers import approve_all, signers_for


def curl(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "30", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_curl_only_pipeline_is_gated_until_four_roles_sign(
    live_server, member, team, tmp_path, aws
):
    _, raw = tokens.token_create(user=member, name="pipeline", scope="write")
    auth = ["-H", f"Authorization: Bearer {raw}"]
    api = f"{live_server.url}/api/v1"

    code, out = curl(
        "--fail-with-body",
        *auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(
            {
                "service": "payments-api",
                "environment": "production",
                "version": "3.0.0",
                "aws_accounts": [{"account_id": "123456789012", "regions": ["us-east-1"]}],
            }
        ),
        f"{api}/deployments",
    )
    assert code == 0, out
    deployment_id = json.loads(out)["id"]

    (tmp_path / "coverage.xml").write_bytes(samples.cobertura(870, 1000))
    (tmp_path / "trivy.json").write_bytes(samples.trivy("MEDIUM", "LOW"))
    for kind, name in (("cobertura", "coverage.xml"), ("trivy", "trivy.json")):
        code, out = curl(
            "--fail-with-body",
            *auth,
            "-F",
            f"kind={kind}",
            "-F",
            f"file=@{tmp_path / name}",
            f"{api}/deployments/{deployment_id}/evidence",
        )
        assert code == 0, out
        assert json.loads(out)["verdicts"][0]["passed"] is True

    code, out = curl(
        "--fail-with-body", *auth, "-X", "POST", f"{api}/deployments/{deployment_id}/probe-runs"
    )
    assert code == 0, out
    run = json.loads(out)
    code, out = curl(
        "--fail-with-body",
        *auth,
        run["url"],
    )
    assert code == 0 and json.loads(out)["total"] > 0, out

    gate = f"{api}/deployments/{deployment_id}/gate"
    code, out = curl("--fail", *auth, gate)
    assert code == 22  # curl --fail: the HTTP 409 stops the pipeline step
    code, out = curl(*auth, gate)
    assert json.loads(out)["missing_roles"] == ["Tech Lead", "Security", "DevOps", "Product"]

    deployment = Deployment.objects.get(pk=deployment_id)
    unit = ChecklistItem.objects.get(section__deployment=deployment, title="Unit Tests")
    assert unit.status == ItemStatus.DONE and unit.source == "evidence"
    approve_all(deployment, signers_for(team))

    code, out = curl("--fail", *auth, gate)
    assert code == 0, out
    assert json.loads(out)["approved"] is True
