"""App config for inference: registers job kinds for live progress and the case-page panel."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = _("Inference")

    def ready(self) -> None:
        from strokeaid_site.events import register_job_kind

        from . import selectors

        register_job_kind("training", selectors.training_run_can_view)
        register_job_kind("prediction", selectors.prediction_can_view)
        from annotation.hooks import register_prediction_overlay

        register_prediction_overlay(selectors.prediction_overlay_url)
        from . import review_setup  # noqa: F401 - review/export pages, job kind, nav, action

        try:
            from cases.panels import register_case_panel
        except ImportError:  # the case page has no panels: the standalone page remains
            return
        from .views import case_predictions_panel_context

        register_case_panel(
            "inference/_case_predictions.html", case_predictions_panel_context, order=30
        )
