"""Middleware: the language a signed-in user chose wins over cookie and browser on pages."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

SESSION_LANGUAGE_KEY = "strokeaid_language"


class UserLanguageMiddleware:
    """Activates the user's saved language (copied into the session at login, so no query).

    Runs after LocaleMiddleware and AuthenticationMiddleware. The API keeps LocaleMiddleware's
    choice (``Accept-Language``), so scripts get the language they ask for.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = (
            request.session.get(SESSION_LANGUAGE_KEY) if hasattr(request, "session") else None
        )
        if language and not request.path.startswith("/api/"):
            translation.activate(language)
            request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        return self.get_response(request)
