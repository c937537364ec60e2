"""Notifications the checklist layer's notices and axes' lockouts call for (connected in
SignoffConfig.ready())."""

from signoff.notifications.services import announce, lockout_report


def probe_run_finished(sender, *, run, errors, **kwargs) -> None:
    """A scheduled re-probe that could not read AWS tells the deployment's owner."""
    if errors:
        announce(
            "reprobe_errors",
            deployment_id=run.deployment_id,
            changes=errors[:30],
            event=f"probe-run-{run.pk}",
        )


def user_locked_out(sender, *, request, username=None, ip_address=None, **kwargs) -> None:
    """axes locked out an account name or an address: audited, administrators told."""
    lockout_report(request=request, username=username, ip_address=ip_address)
