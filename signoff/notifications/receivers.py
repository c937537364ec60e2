"""Notifications the checklist layer's notices call for (connected in SignoffConfig.ready())."""

from signoff.notifications.services import announce


def probe_run_finished(sender, *, run, errors, **kwargs) -> None:
    """A scheduled re-probe that could not read AWS tells the deployment's owner."""
    if errors:
        announce(
            "reprobe_errors",
            deployment_id=run.deployment_id,
            changes=errors[:30],
            event=f"probe-run-{run.pk}",
        )
