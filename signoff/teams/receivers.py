"""Audit events for Django's authentication signals and axes' access attempts (connected in
SignoffConfig.ready()); each receiver calls one service of signoff.teams.authentication."""

from signoff.teams import authentication


def user_logged_in(sender, *, request, user, **kwargs) -> None:
    authentication.login_record(request=request, user=user)


def user_logged_out(sender, *, request, user, **kwargs) -> None:
    authentication.logout_record(request=request, user=user)


def user_login_failed(sender, *, credentials, request=None, **kwargs) -> None:
    authentication.login_failed_record(request=request, credentials=credentials)


def access_attempt_deleted(sender, *, instance, **kwargs) -> None:
    authentication.access_attempt_cleared(attempt=instance)
