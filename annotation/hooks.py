"""Extension point of the editor: other apps offer a read-only overlay (the model's prediction).

The inference app registers, in its ``AppConfig.ready()``::

    from annotation.hooks import register_prediction_overlay
    register_prediction_overlay(lambda *, series, user: url_or_none)

A provider returns None, the URL, or ``{"url": ..., "summary": {...}}`` where the summary is
what the editor's side panel shows beside the overlay: ``etiology`` (title), ``color``,
``confidence`` (0..1) and ``probabilities`` (``[{"title", "color", "p"}]``, highest first).

The URL must answer ``GET`` with the predicted label volume of *that series' grid* in the
editor's raw mask form: ``z*y*x`` uint8 bytes, C order (x fastest), optionally gzip
(``Content-Encoding: gzip``). The editor shows a "Prediction" toggle only when some provider
returns a URL for at least one of the case's series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cases.models import Series

logger = logging.getLogger(__name__)

PredictionUrl = Callable[..., str | dict[str, Any] | None]
_providers: list[PredictionUrl] = []


def register_prediction_overlay(provider: PredictionUrl) -> None:
    """Adds ``provider(*, series, user) -> str | None`` (registered once per process)."""
    if provider not in _providers:
        _providers.append(provider)


def prediction_overlay(*, series: Series, user: Any) -> dict[str, Any] | None:
    """``{"url", "summary"}`` of the first provider offering an overlay for ``series``.

    A failing provider hides the overlay instead of breaking the editor.
    """
    for provider in _providers:
        try:
            found = provider(series=series, user=user)
        except Exception:
            logger.warning("prediction overlay provider failed", exc_info=True)
            continue
        if isinstance(found, str) and found:
            return {"url": found, "summary": None}
        if isinstance(found, dict) and found.get("url"):
            return {"url": found["url"], "summary": found.get("summary")}
    return None


def prediction_overlay_url(*, series: Series, user: Any) -> str | None:
    """The first overlay URL offered for ``series`` (None when there is no prediction)."""
    found = prediction_overlay(series=series, user=user)
    return found["url"] if found else None
