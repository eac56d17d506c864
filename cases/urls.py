"""URL routes of the cases app: pages under ``page_urlpatterns``, REST under ``api_urlpatterns``.

Other parts of the cases app (uploads) append their routes to these lists below the marked
sections; keep one route per line.
"""

from django.urls import URLPattern, URLResolver, path

from cases import upload_views, views
from cases.apis.cases import CaseDetailApi, CaseListCreateApi, CaseSeriesListApi
from cases.apis.labels import LabelListApi
from cases.apis.series import (
    SeriesDetailApi,
    SeriesSlicePngApi,
    SeriesSliceRawApi,
    SeriesVolumeNiftiApi,
    SeriesVolumeRawApi,
)
from cases.apis.uploads import CaseUploadApi, UploadJobDetailApi

app_name = "cases"

# --- pages (mounted at "/") ---------------------------------------------------------------
page_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.case_list, name="home"),
    path("cases/", views.case_list, name="list"),
    path("cases/new/", views.case_create_view, name="create"),
    path("cases/<int:case_id>/", views.case_detail, name="detail"),
    path("cases/<int:case_id>/edit/", views.case_update_view, name="update"),
    path("cases/<int:case_id>/archive/", views.case_archive_view, name="archive"),
    path(
        "cases/<int:case_id>/series/<int:series_id>/quarantine/",
        views.series_quarantine_view,
        name="series-quarantine",
    ),
    path("cases/<int:case_id>/upload/", upload_views.case_upload_view, name="upload"),
]

# --- REST (mounted at "/api/", namespace "cases-api") -------------------------------------
api_urlpatterns: list[URLPattern | URLResolver] = [
    path("labels/", LabelListApi.as_view(), name="labels"),
    path("cases/", CaseListCreateApi.as_view(), name="case-list"),
    path("cases/<int:case_id>/", CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<int:case_id>/series/", CaseSeriesListApi.as_view(), name="case-series"),
    path("cases/<int:case_id>/uploads/", CaseUploadApi.as_view(), name="case-uploads"),
    path("uploads/<int:job_id>/", UploadJobDetailApi.as_view(), name="upload-job"),
    path("series/<int:series_id>/", SeriesDetailApi.as_view(), name="series-detail"),
    path(
        "series/<int:series_id>/volume.nii.gz",
        SeriesVolumeNiftiApi.as_view(),
        name="series-volume-nifti",
    ),
    path(
        "series/<int:series_id>/volume.raw", SeriesVolumeRawApi.as_view(), name="series-volume-raw"
    ),
    path(
        "series/<int:series_id>/slices/<int:z>.png",
        SeriesSlicePngApi.as_view(),
        name="series-slice-png",
    ),
    path(
        "series/<int:series_id>/slices/<int:z>.raw",
        SeriesSliceRawApi.as_view(),
        name="series-slice-raw",
    ),
]

urlpatterns = page_urlpatterns
