"""The task paths of exports and reviews before they had rooms of their own
(``inference.exports.tasks``, ``inference.review.tasks``): a django-q2 queue stores a task by
its dotted path, so tasks queued by an older release still find their function here."""

from inference.exports.tasks import export_execute
from inference.review.tasks import model_review_compute, promotion_comparison_compute

__all__ = ["export_execute", "model_review_compute", "promotion_comparison_compute"]
