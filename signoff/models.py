"""The signoff app's models, for Django's registry; code imports them from their concern."""

from signoff.records.models import SignedRecord
from signoff.signatures.models import Revocation, SignOff, Waiver
from signoff.teams.models import OidcIdentity, Role, RoleMembership

__all__ = [
    "OidcIdentity",
    "Revocation",
    "Role",
    "RoleMembership",
    "SignOff",
    "SignedRecord",
    "Waiver",
]
