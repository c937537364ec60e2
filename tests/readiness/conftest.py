"""Fixtures of the checklist layer's tests."""

import pytest

from tests.signoff_helpers import give_role

# The roles that own items in the default template (Product owns none).
ITEM_OWNING_ROLES = ("tech-lead", "security", "devops")


@pytest.fixture
def team(team, member):
    """Payments, where Lee fills in the items: only holders of an item's owning role change
    it, so he holds every role that owns items here. Refusals of everyone else are
    tests/readiness/checklists/test_ownership.py's."""
    for slug in ITEM_OWNING_ROLES:
        give_role(member, team, slug)
    return team
