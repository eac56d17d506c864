from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EtiologyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "etiology"
    verbose_name = _("Etiology reasoning")

    def ready(self) -> None:
        from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER
        from cases.panels import register_case_panel
        from etiology.views import case_panel_context
        from strokeaid_site.navigation import register_nav_item

        register_case_panel("etiology/_case_panel.html", case_panel_context, order=15)
        register_nav_item(
            _("Checks"), "etiology:checks", roles={DATA_MANAGER, NEUROLOGIST, REVIEWER}, order=55
        )
