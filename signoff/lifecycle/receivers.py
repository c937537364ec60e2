"""What sign-off does when the checklist layer tells it something (see readiness's signals).

Connected in SignoffConfig.ready(); each runs inside the transaction of the change.
"""

from signoff.lifecycle.services import deployment_reevaluate


def checklist_changed(sender, *, deployment, actor, item=None, status_changed=True, **kwargs):
    """An item edit or uploaded evidence: sign-offs it made stale are recorded."""
    deployment_reevaluate(
        deployment=deployment, actor=actor, changed_item=item, status_changed=status_changed
    )


def probe_run_finished(sender, *, run, **kwargs) -> None:
    """New probe results are part of what roles approve, even where no item changed."""
    deployment_reevaluate(deployment=run.deployment, actor=None)
