from django.urls import path

from signoff import verify_views

urlpatterns = [
    path("records/verify/", verify_views.record_verify, name="record_verify"),
]
