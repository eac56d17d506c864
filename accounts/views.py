"""Pages: login/logout (Django's), language switch."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from strokeaid_site.middleware import SESSION_LANGUAGE_KEY

from .models import Profile
from .services import user_set_language


def remember_language_on_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Copies the user's saved language into the session, so pages need no query for it."""
    language = Profile.objects.filter(user=user).values_list("language", flat=True).first()
    if language:
        request.session[SESSION_LANGUAGE_KEY] = language


@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """Sets the interface language: cookie for everyone, profile for signed-in users."""
    language = request.POST.get("language", "")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        user_set_language(user=request.user, language=language)
        request.session[SESSION_LANGUAGE_KEY] = language
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax"
    )
    return response
