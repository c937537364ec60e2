"""A URLconf where the dashboard is elsewhere (test_checklist_presenters)."""

from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("moved/", lambda request: HttpResponse(), name="dashboard")]
