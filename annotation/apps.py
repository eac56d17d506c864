"""App config for annotation: registers the case-page panel, the menu items and the case
status deriver (case status follows the annotations' states)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = _("Annotation")

    def ready(self) -> None:
        from cases.panels import register_case_panel
        from cases.services.case import register_case_status_deriver
        from strokeaid_site.navigation import register_nav_item

        from .services import case_status_from_annotations
        from .views import case_panel_context

        register_case_status_deriver(case_status_from_annotations)
        from cases.storage import register_key_owner

        from .selectors import mask_keys_referenced

        register_key_owner("masks", mask_keys_referenced)
        register_case_panel("annotation/_case_panel.html", case_panel_context, order=10)
        register_nav_item(_("My work"), "annotation:my-work", roles={"neurologist"}, order=10)
        register_nav_item(_("Review"), "annotation:review-queue", roles={"reviewer"}, order=11)
