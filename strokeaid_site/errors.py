"""One error type for the domain and one DRF handler that gives every error the same shape.

Every API error is ``{"message": "...", "extra": {...}}`` (see the public REST contract).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A domain error raised by services; the API turns it into ``status`` + error JSON.

    Args:
        message: human-readable, translated message.
        extra: machine-readable details (e.g. ``{"file": "a.dcm"}``).
        status: HTTP status the API answers with (400 unless the domain says otherwise).
    """

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self, message: str, extra: dict[str, Any] | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if status is not None:
            self.status_code = status


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


class PreconditionFailedError(ApplicationError):
    status_code = status.HTTP_412_PRECONDITION_FAILED


class PreconditionRequiredError(ApplicationError):
    status_code = 428


class TooLargeError(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class ForbiddenError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN


def error_body(message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": str(message), "extra": extra or {}}


def _flatten_detail(detail: Any) -> tuple[str, dict[str, Any]]:
    """Turns DRF's nested validation detail into one message plus ``extra["fields"]``."""
    if isinstance(detail, dict):
        fields = {
            k: [str(e) for e in (v if isinstance(v, list) else [v])] for k, v in detail.items()
        }
        first_field, first_errors = next(iter(fields.items()), ("", [""]))
        prefix = "" if first_field == "non_field_errors" else f"{first_field}: "
        return prefix + (first_errors[0] if first_errors else ""), {"fields": fields}
    if isinstance(detail, list):
        return (str(detail[0]) if detail else _("Invalid input.")), {}
    return str(detail), {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error leaves as ``{"message", "extra"}``."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.message, exc.extra), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        return Response(
            error_body(_("The request body is too large."), {"error": str(exc)}),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        message, extra = _flatten_detail(exc.detail)
    else:
        message, extra = _flatten_detail(getattr(exc, "detail", str(exc)))
        # drf-stubs 3.18 omits Throttled.wait, which DRF sets in __init__ (seconds or None).
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:  # type: ignore[attr-defined]
            extra["retry_after"] = exc.wait  # type: ignore[attr-defined]
    response.data = error_body(message, extra)
    return response


def json_error(message: str, status_code: int, extra: dict[str, Any] | None = None) -> JsonResponse:
    """The same error shape for plain Django views (file endpoints, health)."""
    return JsonResponse(error_body(message, extra), status=status_code)


def database_unavailable(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """``503`` + ``Retry-After`` for a database that cannot be reached right now (JSON under
    ``/api/``, a short text elsewhere); the error text, which may name the host, is only logged."""
    logger.error("database unavailable for %s: %s", request.path, exception)
    message = _("The database is unavailable; try again in a moment.")
    if request.path.startswith("/api/"):
        response: HttpResponse = json_error(message, 503, {})
    else:
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "5"
    return response


def server_error_handler(request: HttpRequest) -> HttpResponse:
    """``handler500``: a lost database is a 503; other errors under ``/api/`` keep the JSON
    shape; pages get Django's 500 page. (Called inside Django's ``except`` block.)"""
    from django.views.defaults import server_error

    exception = sys.exc_info()[1]
    if isinstance(exception, OperationalError | InterfaceError):
        return database_unavailable(request, exception)
    if request.path.startswith("/api/"):
        return json_error(_("Internal server error."), 500, {})
    return server_error(request)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any unknown route under ``/api/``, whatever the method and the DEBUG setting."""
    return json_error(_("Not found."), 404, {"path": request.path})


def not_found_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: JSON with the error shape under ``/api/`` (an unknown route is part of
    the REST contract too), Django's HTML page everywhere else."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return json_error(_("Not found."), 404, {"path": request.path})
    return page_not_found(request, exception or Http404())
