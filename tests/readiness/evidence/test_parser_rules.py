"""The evidence parsers on their own: formats as the tools write them, edges, and hostile
input (entity expansion, external entities, secrets that must not be copied)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readiness.evidence.parsers import EvidenceError, parse_evidence
from tests.readiness.api import samples


def one(kind, data, **kwargs):
    (verdict,) = parse_evidence(kind, data, **kwargs)
    return verdict


@pytest.mark.parametrize(
    ("covered", "valid", "passed"), [(800, 1000, True), (799, 1000, False), (1000, 1000, True)]
)
def test_coverage_passes_at_the_threshold_exactly(covered, valid, passed):
    verdict = one("cobertura", samples.cobertura(covered, valid))
    assert (verdict.section, verdict.item, verdict.passed) == ("Testing", "Unit Tests", passed)
    assert verdict.facts["lines_covered"] == covered
    assert f"{covered} of {valid} lines" in verdict.summary


def test_coverage_threshold_is_a_parameter():
    assert one("cobertura", samples.cobertura(700, 1000), coverage_threshold=70).passed
    assert not one("cobertura", samples.cobertura(700, 1000), coverage_threshold=70.1).passed


def test_coverage_from_line_rate_when_counts_are_absent():
    data = b'<coverage line-rate="0.91" branch-rate="0" version="1"><packages/></coverage>'
    verdict = one("cobertura", data)
    assert verdict.passed and "91.0 %" in verdict.summary


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<coverage lines-covered="0" lines-valid="0"/>', "no lines"),
        (b'<coverage lines-covered="5" lines-valid="4"/>', "more than"),
        (b'<coverage line-rate="1.5"/>', "out of range"),
        (b'<coverage line-rate="abc"/>', "not a number"),
        (b"<coverage/>", "neither"),
        (b"<report/>", "root element"),
        (b"<coverage", "malformed xml"),
    ],
)
def test_bad_coverage_reports(data, message):
    with pytest.raises(EvidenceError, match="(?i)" + message):
        parse_evidence("cobertura", data)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<coverage line-rate="&lol3;"/>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite tests="1">&x;</testsuite>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL])
def test_xml_entities_are_refused(data):
    for kind in ("cobertura", "junit"):
        with pytest.raises(EvidenceError, match="DTD or entities"):
            parse_evidence(kind, data, item="E2E Tests")


def test_junit_counts_and_names_failures():
    verdict = one("junit", samples.junit(failures=2), item="Smoke Tests")
    assert verdict.item == "Smoke Tests" and not verdict.passed
    assert verdict.facts == {"tests": 7, "failures": 2, "errors": 0, "skipped": 0}
    assert verdict.details[0] == "tests.e2e.checkout.test_broken_0: assert 402 == 200"
    assert one("junit", samples.junit(), item="Integration Tests").passed


def test_junit_single_suite_errors_skips_and_empty():
    data = b"""<testsuite name="s" tests="3"><testcase classname="a" name="ok"/>
    <testcase classname="a" name="boom"><error message="Timeout">trace</error></testcase>
    <testcase classname="a" name="later"><skipped/></testcase></testsuite>"""
    verdict = one("junit", data, item="E2E Tests")
    assert not verdict.passed and verdict.facts["errors"] == 1 and verdict.facts["skipped"] == 1
    empty = one("junit", b"<testsuites/>", item="E2E Tests")
    assert not empty.passed and "no tests" in empty.summary


@pytest.mark.parametrize("item", [None, "", "Unit Tests", "e2e tests"])
def test_junit_needs_a_known_testing_item(item):
    with pytest.raises(EvidenceError, match="Integration Tests, E2E Tests"):
        parse_evidence("junit", samples.junit(), item=item)


def test_trivy_fails_on_high_or_critical_and_lists_them():
    verdict = one("trivy", samples.trivy("CRITICAL", "HIGH", "MEDIUM", "LOW"))
    assert (verdict.item, verdict.passed) == ("Security Scan", False)
    assert verdict.facts["by_severity"] == {"CRITICAL": 1, "HIGH": 1, "LOW": 1, "MEDIUM": 1}
    assert verdict.details[0].startswith("CVE-2026-1000 openssl 3.0.13 (fixed 3.0.15) CRITICAL")
    assert len(verdict.details) == 2
    assert one("trivy", samples.trivy("MEDIUM", "LOW")).passed
    assert one("trivy", b'{"SchemaVersion": 2}').passed  # a clean image has no Results


def test_trivy_secret_findings_fail_without_the_secret():
    data = (
        b'{"Results": [{"Target": "app/.env", "Secrets": [{"RuleID": "aws-access-key-id",'
        b' "Severity": "CRITICAL", "StartLine": 3, "Match": "AKIAZZZZZZZZZZZZZZZZ",'
        b' "Code": {"Lines": [{"Content": "AKIAZZZZZZZZZZZZZZZZ"}]}}]}]}'
    )
    verdict = one("trivy", data)
    assert not verdict.passed
    assert verdict.details == ("secret aws-access-key-id CRITICAL in app/.env:3",)
    assert "AKIA" not in repr(verdict)


def test_gitleaks_fails_both_items_and_never_keeps_the_secret():
    verdicts = parse_evidence("gitleaks", samples.gitleaks(2))
    assert [v.item for v in verdicts] == ["Security Scan", "Secrets Management"]
    assert not any(v.passed for v in verdicts)
    assert verdicts[0].details[0] == "aws-access-token in config/settings.py:12 (commit 9f1c2e3d)"
    assert samples.SECRET not in repr(verdicts)
    assert all(v.passed for v in parse_evidence("gitleaks", b"[]"))


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("gitleaks", b'{"findings": []}', "must be a JSON array"),
        ("gitleaks", b"[1]", r"finding \[0\] must be a JSON object"),
        ("trivy", b"[]", "must be a JSON object"),
        ("trivy", b'{"Results": {"a": 1}}', "Results must be a JSON array"),
        ("trivy", b'{"Results": [{"Vulnerabilities": 3}]}', r"Results\[0\].Vulnerabilities"),
        ("trivy", b'{"Results": ', "Malformed JSON at line 1"),
        ("trivy", b"\xff\xfe{}", "UTF-8"),
        ("sbom", b"{}", "Unknown evidence kind"),
        ("trivy", b"   ", "empty"),
    ],
)
def test_bad_json_reports(kind, data, message):
    with pytest.raises(EvidenceError, match=message):
        parse_evidence(kind, data)


def test_long_finding_lists_are_bounded():
    verdict = one("trivy", samples.trivy(*["HIGH"] * 80))
    assert len(verdict.details) == 51 and verdict.details[-1] == "… and 30 more"


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["cobertura", "junit", "trivy", "gitleaks"]),
    data=st.binary(max_size=300)
    | st.sampled_from(
        [samples.cobertura(8, 10), samples.junit(1), samples.trivy("HIGH"), samples.gitleaks()]
    ).flatmap(lambda valid: st.integers(0, len(valid)).map(lambda cut: valid[:cut])),
)
def test_any_bytes_give_verdicts_or_an_evidence_error(kind, data):
    try:
        verdicts = parse_evidence(kind, data, item="E2E Tests")
    except EvidenceError as error:
        assert str(error)
    else:
        assert verdicts and all(v.summary for v in verdicts)
