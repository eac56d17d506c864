"""URL routes of the inference app: pages under page_urlpatterns, REST under api_urlpatterns."""

from django.urls import URLPattern, URLResolver, path

from . import apis, views

app_name = "inference"
page_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.models_page, name="models"),
    path("runs/<int:run_id>/", views.training_run_page, name="training-run"),
    path("runs/start/", views.training_run_start_view, name="training-run-start"),
    path("<int:model_id>/activate/", views.model_activate_view, name="model-activate"),
    path("cases/<int:case_id>/predictions/", views.case_predictions_page, name="case-predictions"),
    path("explorer/", views.explorer_page, name="explorer"),
    path(
        "predictions/<int:prediction_id>/report/",
        views.prediction_report_page,
        name="prediction-report",
    ),
]
api_urlpatterns: list[URLPattern | URLResolver] = [
    path("training-runs/", apis.TrainingRunListApi.as_view(), name="training-run-list"),
    path(
        "training-runs/<int:run_id>/",
        apis.TrainingRunDetailApi.as_view(),
        name="training-run-detail",
    ),
    path("models/", apis.ModelListApi.as_view(), name="model-list"),
    path("models/<int:model_id>/", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<int:model_id>/activate/", apis.ModelActivateApi.as_view(), name="model-activate"),
    path(
        "cases/<int:case_id>/predictions/",
        apis.CasePredictionListApi.as_view(),
        name="case-prediction-list",
    ),
    path(
        "predictions/<int:prediction_id>/",
        apis.PredictionDetailApi.as_view(),
        name="prediction-detail",
    ),
    path("explorer/cryptogenic/", apis.CryptogenicExplorerApi.as_view(), name="explorer"),
    path(
        "predictions/<int:prediction_id>/report.png",
        apis.PredictionReportPngApi.as_view(),
        name="prediction-report-png",
    ),
    path(
        "predictions/<int:prediction_id>/mask.nii.gz",
        apis.PredictionMaskNiftiApi.as_view(),
        name="prediction-mask",
    ),
    path(
        "series/<int:series_id>/prediction.raw",
        apis.SeriesPredictionRawApi.as_view(),
        name="series-prediction-raw",
    ),
]

# --- the review and exports rooms ------------------------------------------------------------
from .exports import apis as export_apis  # noqa: E402
from .exports import views as export_views  # noqa: E402
from .review import apis as review_apis  # noqa: E402
from .review import views as review_views  # noqa: E402

page_urlpatterns += [
    path("review/series/<int:series_id>/", review_views.series_review_page, name="review-series"),
    path(
        "review/series/<int:series_id>/slices/<int:z>.png",
        review_views.series_review_slice,
        name="review-slice",
    ),
    path(
        "review/series/<int:series_id>/action/",
        review_views.series_review_action,
        name="review-action",
    ),
    path(
        "review/series/<int:series_id>/agreement/",
        review_views.series_agreement_page,
        name="review-agreement",
    ),
    path("<int:model_id>/review/", review_views.model_review_page, name="model-review"),
    path(
        "<int:model_id>/review/<str:name>.svg",
        review_views.model_review_plot,
        name="model-review-plot",
    ),
    path("exports/", export_views.exports_page, name="exports"),
]
api_urlpatterns += [
    path("exports/", export_apis.ExportListApi.as_view(), name="export-list"),
    path("exports/<int:export_id>/", export_apis.ExportDetailApi.as_view(), name="export-detail"),
    path(
        "exports/<int:export_id>/download/",
        export_apis.ExportDownloadApi.as_view(),
        name="export-download",
    ),
    path(
        "series/<int:series_id>/agreement/",
        review_apis.SeriesAgreementApi.as_view(),
        name="series-agreement",
    ),
    path(
        "series/<int:series_id>/consensus/",
        review_apis.SeriesConsensusApi.as_view(),
        name="series-consensus",
    ),
    path("series/<int:series_id>/review/", review_apis.SeriesReviewApi.as_view(), name="review"),
    path(
        "series/<int:series_id>/review/accept/",
        review_apis.PredictionAcceptApi.as_view(),
        name="review-accept",
    ),
    path(
        "series/<int:series_id>/review/flag/",
        review_apis.PredictionFlagApi.as_view(),
        name="review-flag",
    ),
]
urlpatterns = page_urlpatterns
