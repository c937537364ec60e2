"""Roles, sign-offs, the audit trail and the signed record live here (the sign-off issue)."""
