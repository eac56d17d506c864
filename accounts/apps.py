"""App config for accounts."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import pre_save

        from .tokens import tokens_revoke_on_credentials
        from .views import remember_language_on_login

        user_logged_in.connect(remember_language_on_login, dispatch_uid="strokeaid-language")
        # A security invariant, not business logic: every way of changing a password (admin,
        # changepassword, set_password in code) must revoke the API tokens.
        pre_save.connect(
            tokens_revoke_on_credentials,
            sender=get_user_model(),
            dispatch_uid="strokeaid-token-rotation",
        )
