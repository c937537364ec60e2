"""Probe keys are stored in results and bound into signatures and records: a key that
existed never disappears or moves to another item, wherever its code lives.

tests/data/probe-keys-v1.json was written from the registry of the code before the probe
modules moved to one axis (sections).
"""

import json
from pathlib import Path

from readiness.probes.base import registry

KEYS = Path(__file__).resolve().parents[1] / "data" / "probe-keys-v1.json"


def test_every_historical_probe_key_still_verifies_the_same_item():
    now = {key: {"section": p.section, "item": p.item} for key, p in registry().items()}
    historical = json.loads(KEYS.read_text())
    assert {key: now.get(key) for key in historical} == historical
