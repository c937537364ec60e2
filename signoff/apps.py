from django.apps import AppConfig


class SignoffConfig(AppConfig):
    name = "signoff"
    verbose_name = "Sign-off"

    def ready(self) -> None:
        # The only places signoff listens to the checklist layer (paperless-ngx connects its
        # handlers the same way). dispatch_uid: a second ready() never connects them twice.
        from axes.models import AccessAttempt
        from axes.signals import user_locked_out
        from django.contrib.auth import signals as auth
        from django.db.models.signals import post_delete

        from readiness.checklists.signals import checklist_changed
        from readiness.probe_runs.signals import probe_run_finished
        from signoff.lifecycle import receivers as lifecycle
        from signoff.notifications import receivers as notifications
        from signoff.notifications import tasks as _notification_tasks  # noqa: F401
        from signoff.records import tasks as _record_tasks  # noqa: F401  (dispatch by name)
        from signoff.teams import receivers as teams

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
        # Logins, logouts, failed attempts, lockouts and unlocks are audit events (21 CFR
        # 11.300(d)); axes' receivers, connected first (INSTALLED_APPS order), count the
        # attempt before these audit it.
        auth.user_logged_in.connect(teams.user_logged_in, dispatch_uid="signoff.teams.logged_in")
        auth.user_logged_out.connect(teams.user_logged_out, dispatch_uid="signoff.teams.logged_out")
        auth.user_login_failed.connect(
            teams.user_login_failed, dispatch_uid="signoff.teams.login_failed"
        )
        post_delete.connect(
            teams.access_attempt_deleted,
            sender=AccessAttempt,
            dispatch_uid="signoff.teams.access_attempt_deleted",
        )
        user_locked_out.connect(
            notifications.user_locked_out, dispatch_uid="signoff.notifications.user_locked_out"
        )
