"""URL routes of the inference app: pages under page_urlpatterns, REST under api_urlpatterns."""

from django.urls import path

from . import apis, views

app_name = "inference"
page_urlpatterns: list = [
    path("", views.models_page, name="models"),
    path("runs/<int:run_id>/", views.training_run_page, name="training-run"),
    path("runs/start/", views.training_run_start_view, name="training-run-start"),
    path("<int:model_id>/activate/", views.model_activate_view, name="model-activate"),
    path("cases/<int:case_id>/predictions/", views.case_predictions_page, name="case-predictions"),
]
api_urlpatterns: list = [
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
urlpatterns = page_urlpatterns
