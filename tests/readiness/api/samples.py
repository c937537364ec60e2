"""Evidence files in the formats the tools write, for the API tests."""

import json


def cobertura(covered: int, valid: int) -> bytes:
    rate = covered / valid if valid else 0
    return f"""<?xml version="1.0" ?>
<coverage version="7.6.1" timestamp="1764300000000" lines-valid="{valid}" lines-covered="{covered}"
  line-rate="{rate:.4f}" branches-covered="0" branches-valid="0" branch-rate="0" complexity="0">
  <sources><source>/builds/payments-api/src</source></sources>
  <packages>
    <package name="payments" line-rate="{rate:.4f}" branch-rate="0" complexity="0">
      <classes>
        <class name="ledger.py" filename="payments/ledger.py" complexity="0"
               line-rate="{rate:.4f}" branch-rate="0">
          <methods/>
          <lines><line number="1" hits="1"/><line number="2" hits="0"/></lines>
        </class>
      </classes>
    </package>
  </packages>
</coverage>
""".encode()


def junit(failures: int = 0) -> bytes:
    cases = "".join(
        f'<testcase classname="tests.e2e.checkout" name="test_path_{n}" time="0.5"/>'
        for n in range(5)
    )
    failed = "".join(
        f'<testcase classname="tests.e2e.checkout" name="test_broken_{n}" time="0.2">'
        f'<failure message="assert 402 == 200">AssertionError</failure></testcase>'
        for n in range(failures)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f'<testsuite name="pytest" errors="0" failures="{failures}" skipped="0" '
        f'tests="{5 + failures}" time="3.1">{cases}{failed}</testsuite></testsuites>'
    ).encode()


def trivy(*severities: str) -> bytes:
    vulnerabilities = [
        {
            "VulnerabilityID": f"CVE-2026-{1000 + n}",
            "PkgName": "openssl",
            "InstalledVersion": "3.0.13",
            "FixedVersion": "3.0.15",
            "Severity": severity,
            "Title": "openssl: a flaw",
        }
        for n, severity in enumerate(severities)
    ]
    return json.dumps(
        {
            "SchemaVersion": 2,
            "ArtifactName": "registry.example.com/payments-api:2.4.0",
            "ArtifactType": "container_image",
            "Results": [
                {
                    "Target": "registry.example.com/payments-api:2.4.0 (debian 12.7)",
                    "Class": "os-pkgs",
                    "Type": "debian",
                    "Vulnerabilities": vulnerabilities,
                }
            ],
        }
    ).encode()


SECRET = "AKIAZZZZZZZZZZZZZZZZ"


def gitleaks(findings: int = 1) -> bytes:
    return json.dumps(
        [
            {
                "Description": "AWS Access Key",
                "StartLine": 12 + n,
                "EndLine": 12 + n,
                "Match": f"aws_access_key_id = {SECRET}",
                "Secret": SECRET,
                "File": "config/settings.py",
                "Commit": "9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6",
                "RuleID": "aws-access-token",
                "Fingerprint": f"9f1c2e3d:config/settings.py:aws-access-token:{12 + n}",
            }
            for n in range(findings)
        ]
    ).encode()
