"""CI reports in, verdicts on checklist items out: Cobertura coverage, JUnit XML, Trivy JSON
and Gitleaks JSON. Pure functions over bytes; no database.

Any input gives either verdicts or an EvidenceError whose message tells the uploader what
was expected and what was found. XML goes through defusedxml with DTDs refused, so entity
expansion and external entities never happen. Secrets a scanner found are never copied into
a verdict: only the rule, the file and the line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

KINDS = ("cobertura", "junit", "trivy", "gitleaks")
JUNIT_ITEMS = ("Integration Tests", "E2E Tests", "Smoke Tests", "Performance Tests")
MAX_DETAILS = 50
BLOCKING_SEVERITIES = ("CRITICAL", "HIGH")


class EvidenceError(ValueError):
    """Input that is not valid evidence of its kind; the message is the client's 400."""


@dataclass(frozen=True)
class Verdict:
    section: str
    item: str
    passed: bool
    summary: str
    details: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


def parse_evidence(
    kind: str, data: bytes, *, item: str | None = None, coverage_threshold: float = 80.0
) -> list[Verdict]:
    if kind not in KINDS:
        raise EvidenceError(f"Unknown evidence kind {kind!r}: expected one of {', '.join(KINDS)}.")
    if not data or not data.strip():
        raise EvidenceError("The file is empty.")
    try:
        if kind == "cobertura":
            return [_cobertura(_xml(data), coverage_threshold)]
        if kind == "junit":
            return [_junit(_xml(data), item)]
        if kind == "trivy":
            return [_trivy(_json(data))]
        return _gitleaks(_json(data))
    except EvidenceError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # A shape the checks below did not foresee: still the uploader's input, still a 400.
        raise EvidenceError(f"Not a valid {kind} report: {type(exc).__name__}: {exc}") from None


def _bounded(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_DETAILS:
        return tuple(lines)
    return (*lines[:MAX_DETAILS], f"… and {len(lines) - MAX_DETAILS} more")


def _short(text: object, limit: int = 200) -> str:
    first = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


# --- XML ---------------------------------------------------------------------------------


def _xml(data: bytes) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise EvidenceError(
            "XML with a DTD or entities is refused: reports never need them."
        ) from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        raise EvidenceError(
            f"Malformed XML at line {line}, column {column}: {_short(exc)}"
        ) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _number(element: Element, name: str, *, integer: bool = False) -> float | None:
    raw = element.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise EvidenceError(
            f"<{_local(element.tag)}> attribute {name}={raw[:40]!r} is not a number."
        ) from None
    if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
        raise EvidenceError(f"<{_local(element.tag)}> attribute {name}={raw[:40]!r} is invalid.")
    return value


def _cobertura(root: Element, threshold: float) -> Verdict:
    if _local(root.tag) != "coverage":
        raise EvidenceError(
            f"A Cobertura report's root element is <coverage>, not <{_local(root.tag)[:50]}>."
        )
    covered = _number(root, "lines-covered", integer=True)
    valid = _number(root, "lines-valid", integer=True)
    if covered is not None and valid is not None:
        if valid == 0:
            raise EvidenceError("The coverage report measured no lines (lines-valid=0).")
        if covered > valid:
            raise EvidenceError(f"lines-covered ({covered}) is more than lines-valid ({valid}).")
        percent = 100.0 * covered / valid
        counted = f": {covered} of {valid} lines"
    else:
        rate = _number(root, "line-rate")
        if rate is None:
            raise EvidenceError("<coverage> has neither lines-covered/lines-valid nor line-rate.")
        if rate > 1:
            raise EvidenceError(f"line-rate {rate} is out of range (0 to 1).")
        percent, counted = 100.0 * rate, ""
    passed = percent >= threshold
    return Verdict(
        section="Testing",
        item="Unit Tests",
        passed=passed,
        summary=(
            f"Line coverage {percent:.1f} % ({'at or above' if passed else 'below'} the "
            f"{threshold:g} % threshold){counted}"
        ),
        facts={
            "line_coverage_percent": round(percent, 2),
            "threshold_percent": threshold,
            "lines_covered": covered,
            "lines_valid": valid,
        },
    )


def _junit(root: Element, item: str | None) -> Verdict:
    if item not in JUNIT_ITEMS:
        raise EvidenceError(
            "A JUnit report needs `item`, the testing item it proves: one of "
            f"{', '.join(JUNIT_ITEMS)}" + (f" (not {item[:60]!r})." if item else ".")
        )
    tag = _local(root.tag)
    if tag == "testsuites":
        suites = [child for child in root if _local(child.tag) == "testsuite"]
    elif tag == "testsuite":
        suites = [root]
    else:
        raise EvidenceError(
            f"A JUnit report's root element is <testsuites> or <testsuite>, not <{tag[:50]}>."
        )
    tests = failures = errors = skipped = 0
    failing: list[str] = []
    for suite in suites:
        # Nested suites (some runners) are counted through their test cases.
        cases = [el for el in suite.iter() if _local(el.tag) == "testcase"]
        for case in cases:
            outcome = {_local(child.tag) for child in case}
            tests += 1
            if "failure" in outcome or "error" in outcome:
                kind = "failure" if "failure" in outcome else "error"
                failures += kind == "failure"
                errors += kind == "error"
                problem = next(child for child in case if _local(child.tag) == kind)
                message = problem.get("message") or problem.text or kind
                name = ".".join(filter(None, (case.get("classname"), case.get("name"))))
                failing.append(f"{name or 'unnamed test'}: {_short(message)}")
            elif "skipped" in outcome:
                skipped += 1
        if not cases:
            # Attribute counts only (a summary report): trust them.
            tests += int(_number(suite, "tests", integer=True) or 0)
            failures += int(_number(suite, "failures", integer=True) or 0)
            errors += int(_number(suite, "errors", integer=True) or 0)
            skipped += int(_number(suite, "skipped", integer=True) or 0)
    if tests == 0:
        return Verdict(
            section="Testing",
            item=item,
            passed=False,
            summary="The report holds no tests: nothing was shown to pass.",
            facts={"tests": 0},
        )
    passed = failures + errors == 0
    ran = tests - skipped
    summary = (
        f"{ran} of {tests} tests ran, all passed ({skipped} skipped)"
        if passed
        else f"{failures} failed and {errors} errored of {tests} tests ({skipped} skipped)"
    )
    return Verdict(
        section="Testing",
        item=item,
        passed=passed,
        summary=summary,
        details=_bounded(failing),
        facts={"tests": tests, "failures": failures, "errors": errors, "skipped": skipped},
    )


# --- JSON --------------------------------------------------------------------------------


def _json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceError(f"JSON must be UTF-8; byte {exc.start} is not.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(
            f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None


def _expect(value: Any, kind: type | tuple, where: str) -> Any:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        found = type(value).__name__ if value is not None else "null"
        raise EvidenceError(f"{where} must be a JSON {_JSON_NAMES.get(names, names)}, not {found}.")
    return value


_JSON_NAMES = {"dict": "object", "list": "array", "str": "string"}


def _trivy(report: Any) -> Verdict:
    _expect(report, dict, "A Trivy report")
    results = report.get("Results") or []
    _expect(results, list, "Results")
    counts: dict[str, int] = {}
    blocking: list[str] = []
    for n, result in enumerate(results):
        _expect(result, dict, f"Results[{n}]")
        target = str(result.get("Target") or "?")[:200]
        for key in ("Vulnerabilities", "Misconfigurations", "Secrets"):
            findings = result.get(key) or []
            _expect(findings, list, f"Results[{n}].{key}")
            for m, finding in enumerate(findings):
                _expect(finding, dict, f"Results[{n}].{key}[{m}]")
                severity = str(finding.get("Severity") or "UNKNOWN").upper()[:20]
                counts[severity] = counts.get(severity, 0) + 1
                if key == "Secrets":
                    # The matched text is the secret: only the rule and place are kept.
                    blocking.append(
                        f"secret {finding.get('RuleID', '?')} {severity} in {target}"
                        f":{finding.get('StartLine', '?')}"
                    )
                elif severity in BLOCKING_SEVERITIES:
                    blocking.append(_trivy_line(key, finding, severity, target))
    facts = {"by_severity": dict(sorted(counts.items())), "blocking": len(blocking)}
    if blocking:
        summary = f"{len(blocking)} HIGH or CRITICAL finding{'s' if len(blocking) != 1 else ''}"
    else:
        total = sum(counts.values())
        summary = f"No HIGH or CRITICAL findings ({total} lower-severity)"
    return Verdict(
        section="Security",
        item="Security Scan",
        passed=not blocking,
        summary=f"Trivy: {summary}",
        details=_bounded(blocking),
        facts=facts,
    )


def _trivy_line(key: str, finding: dict, severity: str, target: str) -> str:
    if key == "Vulnerabilities":
        fixed = finding.get("FixedVersion")
        return (
            f"{finding.get('VulnerabilityID', '?')} {finding.get('PkgName', '?')} "
            f"{finding.get('InstalledVersion', '?')}"
            f"{f' (fixed {fixed})' if fixed else ' (no fix yet)'} {severity} in {target}"
        )[:300]
    return (
        f"{finding.get('ID') or finding.get('AVDID') or '?'} "
        f"{_short(finding.get('Title'), 120)} {severity} in {target}"
    )[:300]


def _gitleaks(report: Any) -> list[Verdict]:
    _expect(report, list, "A Gitleaks report")
    lines = []
    for n, finding in enumerate(report):
        _expect(finding, dict, f"finding [{n}]")
        commit = str(finding.get("Commit") or "")[:8]
        lines.append(
            f"{str(finding.get('RuleID') or '?')[:80]} in "
            f"{str(finding.get('File') or '?')[:200]}:{finding.get('StartLine', '?')}"
            + (f" (commit {commit})" if commit else "")
        )
    passed = not lines
    summary = (
        "Gitleaks: no secrets found"
        if passed
        else f"Gitleaks: {len(lines)} secret{'s' if len(lines) != 1 else ''} found in the code"
    )
    facts = {"findings": len(lines)}
    return [
        Verdict("Security", item, passed, summary, _bounded(lines), facts)
        for item in ("Security Scan", "Secrets Management")
    ]
