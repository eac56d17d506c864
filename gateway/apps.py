from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "gateway"
    verbose_name = _("DICOM gateway")

    def ready(self) -> None:
        from accounts.roles import DATA_MANAGER
        from strokeaid_site.navigation import register_nav_item

        register_nav_item(_("PACS"), "gateway:studies", roles={DATA_MANAGER}, order=80)

        from cases.panels import register_case_list_panel, register_case_panel

        from .views import case_panel_context, import_panel_context

        register_case_panel("gateway/_case_panel.html", case_panel_context, order=15)
        register_case_list_panel("gateway/_import_dialog.html", import_panel_context, order=10)
