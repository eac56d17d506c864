"""URL routes of the etiology app: pages (mounted at "/etiology/") and REST (under "/api/")."""

from django.urls import URLPattern, URLResolver, path

from . import apis, views

app_name = "etiology"

urlpatterns: list[URLPattern | URLResolver] = [
    path("cases/<int:case_id>/workup/", views.workup_update_view, name="workup-update"),
    path("checks/", views.checks_list_view, name="checks"),
]

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("cases/<int:case_id>/workup/", apis.WorkupApi.as_view(), name="workup"),
    path("cases/<int:case_id>/checks/", apis.CaseChecksApi.as_view(), name="case-checks"),
    path("checks/", apis.OpenChecksApi.as_view(), name="checks"),
]
