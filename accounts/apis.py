"""REST: token login (``POST``) and revocation (``DELETE``) at ``/api/auth/token/``."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from strokeaid_site.errors import ApplicationError

from .tokens import ExpiringTokenAuthentication, token_expires_at, token_obtain, tokens_revoke

logger = logging.getLogger(__name__)


class TokenThrottle(AnonRateThrottle):
    """20 tries a minute per client address. The counter lives in the cache (Redis in
    production): when the cache is down the throttle lets the request through (logged) rather
    than turning every login into a 500."""

    scope = "token"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return bool(super().allow_request(request, view))
        except Exception:  # noqa: BLE001 - any cache backend error
            logger.warning("login throttle unavailable (cache error); request allowed")
            return True


class TokenObtainApi(APIView):
    """``POST /api/auth/token/`` ``{"username", "password"}`` → ``{"token", "expires_at"}``;
    ``DELETE`` (authenticated) revokes every token of the caller."""

    permission_classes = [AllowAny]
    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    throttle_classes = [TokenThrottle]
    error_statuses = (401, 429)

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        if request.method == "POST":
            # Logging in needs no credentials: a stale token in the header must not get a 401.
            drf_request.authenticators = ()
        return drf_request

    class InputSerializer(serializers.Serializer[Any]):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "Token",
                {
                    "token": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(allow_null=True),
                },
            )
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request=request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise ApplicationError(_("Unable to log in with the given credentials."), status=400)
        token = token_obtain(user=user)
        return Response(
            {"token": token.key, "expires_at": token_expires_at(token)}, status=status.HTTP_200_OK
        )

    @extend_schema(responses={204: None}, request=None)
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise ApplicationError(_("Sign in to revoke your tokens."), status=401)
        tokens_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
