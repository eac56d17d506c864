from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EtiologyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "etiology"
    verbose_name = _("Etiology reasoning")

    def ready(self) -> None:
        from cases.panels import register_case_panel
        from etiology.views import case_panel_context

        register_case_panel("etiology/_case_panel.html", case_panel_context, order=15)
