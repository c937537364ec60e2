"""Which role owns which items: the seed checklist's roles and their default sections.

Roles themselves are signoff's rows; the checklist layer names them only by these strings.
"""

# The Final Sign-Off roles of the seed checklist, in its order, and the sections each owns
# by default (Product reads the whole checklist's summary and owns no items).
SEED_ROLES = ("Tech Lead", "Security", "DevOps", "Product")
DEFAULT_SECTION_OWNERS = {
    "Security": "Security",
    "Compliance": "Security",
    "Reliability": "DevOps",
    "Monitoring & Observability": "DevOps",
    "Cost Optimization": "DevOps",
    "Deployment": "DevOps",
    "Performance": "Tech Lead",
    "Testing": "Tech Lead",
    "Operational": "Tech Lead",
}
# An item no role owns is the Tech Lead's to waive and sign for; any member of the team fills it
# in (readiness.checklists.teams.may_change_item).
UNOWNED_ITEM_ROLE_SLUG = "tech-lead"
