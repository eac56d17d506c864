"""Registers the review and export pages: job kind, top navigation, case-page action."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from accounts.roles import DATA_MANAGER
from strokeaid_site.events import register_job_kind
from strokeaid_site.navigation import register_nav_item

from .review_views import case_review_link
from .selectors import TRAINING_READ_ROLES
from .services.export import export_can_view

register_job_kind("export", export_can_view)
# The models page lists versions and training runs: the roles that read training runs
# (selectors.TRAINING_READ_ROLES) and open the model review get the menu entry. Clinicians
# may open the page too, but they only need the active model, which their case page names.
register_nav_item(_("Models"), "inference:models", roles=TRAINING_READ_ROLES, order=30)
register_nav_item(_("Exports"), "inference:exports", roles={DATA_MANAGER}, order=60)
try:
    from cases.panels import register_case_action
except ImportError:  # pragma: no cover - the case page without extension points
    pass
else:
    register_case_action(
        _("Compare with model"), case_review_link, order=40, key="inference-review"
    )
