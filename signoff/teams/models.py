"""Roles and their members within a team: who may sign for what."""

from django.conf import settings
from django.db import models


class Role(models.Model):
    """A sign-off role (Tech Lead, Security, DevOps, Product)."""

    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    position = models.PositiveSmallIntegerField(default=0)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class RoleMembership(models.Model):
    """A user holds a role within one team; only members of a role may sign for it there."""

    team = models.ForeignKey("readiness.Team", on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_memberships"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "role", "user"]
        # Who may sign is decided by this permission (a superuser has it), never by
        # is_staff alone: a staff account is not an authority over teams.
        permissions = [("manage_teams", "Can change team members and who holds which role")]
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "role"], name="one_membership_per_role")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} in {self.team}"


class OidcIdentity(models.Model):
    """The account an OpenID provider's subject logs in as (OIDC SSO). `sub` is the one
    claim the provider promises never to reassign at its issuer; names and email addresses
    change and are copied onto the account at each login, never used to find it."""

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="one_account_per_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
