"""App config for inference: job kinds for live progress, navigation and case-page extensions,
and the warm-up of the task workers."""

import logging
import os
from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


def warm_worker(sender: Any = None, proc_name: str = "", **kwargs: Any) -> None:
    """django-q2's ``post_spawn``, in each new worker process: warm the default queue's
    workers (inference.services.warmup); the training queue's workers train, they do not
    predict. A failed warm-up is logged and the worker starts cold, never not at all."""
    from django.conf import settings

    if os.environ.get("Q_CLUSTER_NAME") == settings.TRAINING_QUEUE:
        return
    from strokeaid_site.conf import app_settings

    if not app_settings.WORKER_WARMUP:
        return
    from inference.services.warmup import worker_warm_up

    try:
        took = worker_warm_up()
    except Exception:
        logger.warning("worker %s: warm-up failed; it starts cold", proc_name, exc_info=True)
        return
    logger.info("worker %s warmed up: %s", proc_name, took or "nothing to load")


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = _("Inference")

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER
        from annotation.hooks import register_prediction_overlay
        from cases.panels import register_case_action, register_case_panel
        from cases.services.case import register_case_file_prefixes
        from cases.storage import register_key_owner
        from strokeaid_site.events import register_job_kind
        from strokeaid_site.navigation import register_nav_item

        from . import selectors
        from .exports import selectors as export_selectors
        from .review.views import case_review_link
        from .views import case_predictions_panel_context

        post_spawn.connect(warm_worker, dispatch_uid="strokeaid-warm-worker")
        register_job_kind("training", selectors.training_run_can_view)
        register_job_kind("prediction", selectors.prediction_can_view)
        register_job_kind("export", export_selectors.export_can_view)
        register_prediction_overlay(selectors.prediction_overlay)
        register_case_file_prefixes(selectors.prediction_file_prefixes)
        register_key_owner("predictions", selectors.prediction_keys_referenced)
        register_key_owner("models", selectors.model_keys_referenced)
        register_key_owner("exports", export_selectors.export_keys_referenced)
        # The models page lists versions and training runs: the roles that read training runs
        # open the model review and get the menu entry. Clinicians may open the page too, but
        # they only need the active model, which their case page names.
        register_nav_item(
            _("Models"), "inference:models", roles=selectors.TRAINING_READ_ROLES, order=30
        )
        register_nav_item(_("Exports"), "inference:exports", roles={DATA_MANAGER}, order=60)
        register_nav_item(
            _("Explorer"),
            "inference:explorer",
            roles={DATA_MANAGER, NEUROLOGIST, REVIEWER},
            order=50,
        )
        register_case_panel(
            "inference/_case_predictions.html", case_predictions_panel_context, order=30
        )
        register_case_action(
            _("Compare with model"), case_review_link, order=40, key="inference-review"
        )
