"""Middleware: the language a signed-in user chose wins over cookie and browser on pages."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
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
            request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if language and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
            # After a login on another browser the session knows the user's language but the
            # cookie does not: without it the editor's API calls (which follow LocaleMiddleware:
            # cookie, then Accept-Language) would answer errors in the browser's language.
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax"
            )
        return response
