"""Team pages and the per-deployment audit trail (being written)."""

urlpatterns: list = []
