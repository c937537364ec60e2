from django.urls import path

from signoff import record_views

urlpatterns = [
    path(
        "deployments/<int:pk>/records/<int:number>/",
        record_views.record_download,
        name="record_download",
    ),
    path("deployments/<int:pk>/draft.pdf", record_views.record_draft, name="record_draft"),
]
