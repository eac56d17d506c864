"""Pages of the gateway (mounted at "/pacs/")."""

from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "gateway"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.studies_view, name="studies"),
]
