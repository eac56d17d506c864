"""A task worker's warm-up: what its first prediction would otherwise load on the clock.

A django-q2 cluster runs several worker processes (``Q_WORKERS``, default 2) and a prediction
lands on any of them. Cold, a worker spent ~5 s more on its first prediction than later ones
(importing torch and the network code 2.8 s, the MNI template 1.4 s, the territory atlas
0.7 s, then the active model's weights), so the first request after a restart, on each
worker, was slow: 6-7 s instead of ~2.3 s in bench/gateway.py and bench/bot.py. The
``post_spawn`` receiver in ``InferenceConfig.ready`` runs :func:`worker_warm_up` as each
worker of the default queue starts.
"""

from __future__ import annotations

import logging
import time

from etiology.reasoning.atlas import atlas_available, load_atlas
from etiology.reasoning.registration import template_mask
from inference.selectors import model_active_get
from inference.services.prediction import predictor_for

logger = logging.getLogger(__name__)


def worker_warm_up() -> dict[str, float]:
    """Loads the active model's predictor into this process's cache and the MNI template and
    territory atlas into theirs; returns the seconds each part took (parts with nothing to
    load are left out: no active model, no atlas installed)."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    model = model_active_get()
    if model is not None and model.usable:
        predictor_for(model)
        took["model"] = round(time.perf_counter() - started, 3)
    if atlas_available():
        started = time.perf_counter()
        template_mask()
        load_atlas()
        took["atlas"] = round(time.perf_counter() - started, 3)
    return took
