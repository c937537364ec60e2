from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class ReadinessConfig(AppConfig):
    name = "readiness"
    verbose_name = "Readiness checklists"

    def ready(self) -> None:
        from readiness.audit import tasks as audit_tasks  # noqa: F401  (registered by name)
        from readiness.outbox import tasks as outbox_tasks  # noqa: F401  (the beat sweeper)
        from readiness.probe_runs import tasks  # noqa: F401  (registered for dispatch by name)
        from readiness.probe_runs.services import probe_settings

        # Fail at start-up, naming the variable, rather than on the first probe run.
        try:
            probe_settings()
        except TypeError as exc:
            raise ImproperlyConfigured(f"PROBE_SETTINGS: {exc}") from None
