"""REST of the bot: link codes for signed-in users; chat links for the bot service account.

``POST /api/bot/link-codes/`` (any signed-in user with a role) -> ``201 {"code", "expires_at"}``
``POST /api/bot/links/`` (service account) ``{"chat_id", "code"}`` -> ``201`` the link
``GET|PATCH|DELETE /api/bot/links/{chat_id}/`` (service account) -> the link, its language
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from accounts.roles import user_roles
from bot import selectors, services
from bot.models import BotChatLink
from strokeaid_site.errors import NotFoundError


class IsBotService(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.is_bot_service(request.user)


class LinkCodeOutputSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ChatLinkInputSerializer(serializers.Serializer[Any]):
    chat_id = serializers.IntegerField()
    code = serializers.CharField(max_length=32)


class ChatLanguageInputSerializer(serializers.Serializer[Any]):
    language = serializers.CharField(max_length=8)


def link_json(link: BotChatLink) -> dict[str, Any]:
    return {
        "chat_id": link.chat_id,
        "user": link.user_id,
        "username": link.user.get_username(),
        "roles": sorted(user_roles(link.user)),
        "language": selectors.chat_language(link),
        "linked_at": link.created_at.isoformat(),
    }


class LinkCodeCreateApi(APIView):
    @extend_schema(request=None, responses={201: LinkCodeOutputSerializer})
    def post(self, request: Request) -> Response:
        code, expires_at = services.link_code_create(user=request_user(request))
        return Response(
            LinkCodeOutputSerializer({"code": code, "expires_at": expires_at}).data,
            status=status.HTTP_201_CREATED,
        )


class ChatLinkCreateApi(APIView):
    permission_classes = [IsBotService]

    @extend_schema(request=ChatLinkInputSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = ChatLinkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.chat_link(
            chat_id=data.validated_data["chat_id"], code=data.validated_data["code"]
        )
        link = selectors.chat_link_get(chat_id=link.chat_id) or link
        return Response(link_json(link), status=status.HTTP_201_CREATED)


class ChatLinkDetailApi(APIView):
    permission_classes = [IsBotService]

    def _link(self, chat_id: int) -> BotChatLink:
        link = selectors.chat_link_get(chat_id=chat_id)
        if link is None:
            raise NotFoundError("This chat is not linked to an account.", {"chat_id": chat_id})
        return link

    @extend_schema(responses=dict)
    def get(self, request: Request, chat_id: int) -> Response:
        return Response(link_json(self._link(chat_id)))

    @extend_schema(request=ChatLanguageInputSerializer, responses=dict)
    def patch(self, request: Request, chat_id: int) -> Response:
        data = ChatLanguageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.chat_language_set(
            link=self._link(chat_id), language=data.validated_data["language"]
        )
        return Response(link_json(link))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, chat_id: int) -> Response:
        if not services.chat_unlink(chat_id=chat_id, actor=None):
            raise NotFoundError("This chat is not linked to an account.", {"chat_id": chat_id})
        return Response(status=status.HTTP_204_NO_CONTENT)
