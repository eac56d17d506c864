"""App config for cases."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Cases")

    def ready(self) -> None:
        from strokeaid_site.events import register_job_kind

        from .selectors import upload_job_can_view

        # Upload progress over the websocket: whoever may see the job's case may watch it.
        register_job_kind("upload", upload_job_can_view)
        from . import selectors, storage

        storage.register_key_owner("volumes", selectors.volume_keys_referenced)
        storage.register_key_owner("staging", selectors.staging_keys_referenced)
