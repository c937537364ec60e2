from django.apps import AppConfig


class SignoffConfig(AppConfig):
    name = "signoff"
    verbose_name = "Sign-off"

    def ready(self) -> None:
        # The only places signoff listens to the checklist layer (paperless-ngx connects its
        # handlers the same way). dispatch_uid: a second ready() never connects them twice.
        from readiness.checklists.signals import checklist_changed
        from readiness.probe_runs.signals import probe_run_finished
        from signoff.lifecycle import receivers as lifecycle
        from signoff.notifications import receivers as notifications
        from signoff.notifications import tasks as _notification_tasks  # noqa: F401
        from signoff.records import tasks as _record_tasks  # noqa: F401  (dispatch by name)

        checklist_changed.connect(
            lifecycle.checklist_changed, dispatch_uid="signoff.lifecycle.checklist_changed"
        )
        probe_run_finished.connect(
            lifecycle.probe_run_finished, dispatch_uid="signoff.lifecycle.probe_run_finished"
        )
        probe_run_finished.connect(
            notifications.probe_run_finished,
            dispatch_uid="signoff.notifications.probe_run_finished",
        )
