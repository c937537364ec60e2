from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "readiness.api"
    # The label predates the move under readiness/: tables, migrations and tokens keep it.
    label = "api"
    verbose_name = "Pipeline API"
    default_auto_field = "django.db.models.BigAutoField"
