"""Middleware: the user's language on pages; a lost database answers 503, not a traceback."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from .errors import database_unavailable

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


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached (restarting, connections exhausted, SQLite busy past
    its timeout) is a temporary condition: ``503`` with ``Retry-After`` in the error shape
    (JSON under ``/api/``, a short page elsewhere), logged once, never a debug page that would
    show the database host."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable(request, exception)
