"""Who is knocking: the client address rule and the lockout answer of the login guards.

Every login path (``/api/auth/token/``, ``/accounts/login/``, ``/admin/login/``) goes through
``django.contrib.auth.authenticate`` with the request, so django-axes counts failed attempts
per username and client address in the database (``AccessAttempt``, ``AccessFailureLog``:
the audit trail, readable in the admin) and locks that pair out after
``AXES_FAILURE_LIMIT`` failures for ``AXES_COOLOFF_TIME``. The token route also has DRF's
per-address throttle. Both take the client address from ``client_ip``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def client_ip(request: HttpRequest) -> str:
    """The socket address, or with ``TRUSTED_PROXY_COUNT`` = n > 0 the address n hops back in
    ``X-Forwarded-For`` (what the outermost trusted proxy saw). A client-chosen header never
    decides on its own: the old rule took the whole header, so a new one per try escaped."""
    proxies = int(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0)
    remote = str(request.META.get("REMOTE_ADDR", ""))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [part.strip() for part in str(forwarded).split(",") if part.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """429 for a locked-out username and address: the API's error shape or the login page."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = _(
        "Too many failed sign-in attempts. Try again in %(minutes)d minutes or ask an "
        "administrator to unlock the account."
    ) % {"minutes": minutes}
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"message": message, "extra": {"retry_after": minutes * 60}}, status=429
        )
    else:
        response = render(request, "registration/locked.html", {"message": message}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
