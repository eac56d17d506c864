"""Pages of the gateway (mounted at "/pacs/") and its REST routes (under "/api/")."""

from django.urls import URLPattern, URLResolver, path

from . import apis, views

app_name = "gateway"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.studies_view, name="studies"),
]

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("pacs/studies/", apis.PacsStudySearchApi.as_view(), name="pacs-studies"),
    path("pacs/imports/", apis.PacsImportListApi.as_view(), name="pacs-imports"),
    path("pacs/imports/<int:job_id>/", apis.PacsImportDetailApi.as_view(), name="pacs-import"),
]
