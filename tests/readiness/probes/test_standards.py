"""The standards table: one row per probe, ids of the right shape, the doc generated from it,
and the verdicts the issue aligned with Security Hub mapped as such."""

import re
from pathlib import Path

from readiness.probes import standards
from readiness.probes.base import registry
from readiness.probes.standards import Match

DOC = Path(__file__).resolve().parents[3] / "docs" / "controls.md"

SECURITY_HUB_ID = re.compile(r"^[A-Za-z0-9]+\.\d+$")
PROWLER_ID = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
CONFIG_RULE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
WELL_ARCHITECTED_ID = re.compile(r"^(sec|rel|ops|perf|cost|sus)_[a-z0-9_]+$")


def test_every_probe_has_a_row_and_every_row_a_probe():
    probes = set(registry())
    rows = set(standards.PROBES)
    assert probes - rows == set(), "probes without a row in readiness/probes/standards.py"
    assert rows - probes == set(), "rows naming no registered probe"


def test_ids_have_the_shape_of_their_standard_and_partial_says_why():
    for key, row in standards.PROBES.items():
        for control in row.security_hub:
            assert SECURITY_HUB_ID.match(control.id), (key, control.id)
            assert (control.match == Match.PARTIAL) == bool(control.note), (key, control.id)
        assert all(PROWLER_ID.match(check) for check in row.prowler), key
        assert all(CONFIG_RULE.match(rule) for rule in row.config_rules), key
        assert all(WELL_ARCHITECTED_ID.match(choice) for choice in row.well_architected), key
        for values in (row.prowler, row.config_rules, row.well_architected):
            assert len(values) == len(set(values)), key


def test_the_controls_the_issue_aligned_are_mapped_in_full():
    groups = {c.id: c.match for c in standards.standards_of("network.security_groups").security_hub}
    assert {"EC2.18", "EC2.19", "EC2.53", "EC2.54"} <= set(groups)
    assert {groups[control] for control in ("EC2.18", "EC2.19", "EC2.53", "EC2.54")} == {Match.FULL}
    alarms = {
        c.id: c.match for c in standards.standards_of("monitoring.cloudwatch_alarms").security_hub
    }
    assert alarms == {"CloudWatch.15": Match.FULL, "CloudWatch.17": Match.FULL}


def test_the_controls_doc_is_generated_from_the_table():
    expected = standards.controls_markdown(
        {key: (probe.section, probe.item) for key, probe in registry().items()}
    )
    assert DOC.read_text() == expected, (
        "docs/controls.md is stale: run "
        "`.venv/bin/python -m readiness.probes.standards > docs/controls.md`"
    )
    for key in registry():
        assert f"| `{key}` |" in expected
