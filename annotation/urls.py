"""URL routes of the annotation app: pages under page_urlpatterns, REST under api_urlpatterns."""

from django.urls import URLPattern, URLResolver, path

from . import apis, views

app_name = "annotation"

# --- pages (mounted at "/annotation/") ------------------------------------------------------
page_urlpatterns: list[URLPattern | URLResolver] = [
    path("cases/<int:case_id>/", views.editor, name="editor"),
    path("my-work/", views.my_work, name="my-work"),
    path("review/", views.review_queue, name="review-queue"),
]

# --- REST (mounted at "/api/", namespace "annotation-api") ----------------------------------
api_urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "series/<int:series_id>/mask.nii.gz", apis.SeriesMaskNiftiApi.as_view(), name="mask-nifti"
    ),
    path("series/<int:series_id>/mask.raw", apis.SeriesMaskRawApi.as_view(), name="mask-raw"),
    path(
        "series/<int:series_id>/annotations/",
        apis.SeriesAnnotationListApi.as_view(),
        name="series-annotations",
    ),
    path("annotations/<int:annotation_id>/", apis.AnnotationDetailApi.as_view(), name="detail"),
    path(
        "annotations/<int:annotation_id>/revisions/",
        apis.AnnotationRevisionListApi.as_view(),
        name="revisions",
    ),
    path(
        "annotations/<int:annotation_id>/revisions/<int:number>/restore/",
        apis.AnnotationRestoreApi.as_view(),
        name="restore",
    ),
    path(
        "annotations/<int:annotation_id>/mask.raw",
        apis.AnnotationMaskRawApi.as_view(),
        name="annotation-mask-raw",
    ),
    path(
        "annotations/<int:annotation_id>/mask.nii.gz",
        apis.AnnotationMaskNiftiApi.as_view(),
        name="annotation-mask-nifti",
    ),
    path(
        "annotations/<int:annotation_id>/submit/", apis.AnnotationSubmitApi.as_view(), name="submit"
    ),
    path(
        "annotations/<int:annotation_id>/approve/",
        apis.AnnotationApproveApi.as_view(),
        name="approve",
    ),
    path(
        "annotations/<int:annotation_id>/return/", apis.AnnotationReturnApi.as_view(), name="return"
    ),
    path("cases/<int:case_id>/labelling/", apis.CaseLabellingApi.as_view(), name="labelling"),
]

urlpatterns = page_urlpatterns
