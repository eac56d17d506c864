"""Typed access to the signed-in user of a request."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


def request_user(request: HttpRequest | Request) -> User:
    """The authenticated ``User`` of ``request``.

    Only for views whose permissions (``IsAuthenticated``, ``role_required``,
    ``login_required``) already turn anonymous requests away: it narrows
    ``User | AnonymousUser`` to ``User`` for the type checker and returns the same
    object.
    """
    user = request.user
    assert user.is_authenticated, "request_user() needs a view that requires login"
    return user
