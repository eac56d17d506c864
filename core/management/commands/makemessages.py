"""``makemessages`` with the project's defaults: skips non-source folders, knows the JS alias.

Plain ``manage.py makemessages -l ru`` and ``manage.py makemessages -d djangojs -l ru`` then
produce the catalogues the translation test expects (see ``strokeaid_site.i18n``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import makemessages

from strokeaid_site.i18n import JS_EXTRA_KEYWORDS, MAKEMESSAGES_IGNORE


class Command(makemessages.Command):
    """Adds our ignore patterns and, for the djangojs domain, the ``t`` alias of ``gettext``."""

    def handle(self, *args: Any, **options: Any) -> str | None:
        options["ignore_patterns"] = list(options.get("ignore_patterns") or []) + [
            p for p in MAKEMESSAGES_IGNORE if p not in (options.get("ignore_patterns") or [])
        ]
        if options.get("domain") == "djangojs":
            self.xgettext_options = makemessages.Command.xgettext_options + [
                f"--keyword={k}" for k in JS_EXTRA_KEYWORDS
            ]
        return super().handle(*args, **options)
