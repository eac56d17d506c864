from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BotConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "bot"
    verbose_name = _("Stroke AID bot")

    def ready(self) -> None:
        from accounts.roles import CLINICIAN, DATA_MANAGER, NEUROLOGIST, REVIEWER
        from strokeaid_site.navigation import register_nav_item

        register_nav_item(
            _("Telegram bot"),
            "bot:profile",
            roles={CLINICIAN, DATA_MANAGER, NEUROLOGIST, REVIEWER},
            order=90,
        )
