"""URL routes of the bot app: the profile page (mounted at "/bot/") and REST (under "/api/")."""

from django.urls import URLPattern, URLResolver, path

from . import apis, views

app_name = "bot"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.profile_bot_view, name="profile"),
    path("links/<int:link_id>/revoke/", views.link_revoke_view, name="link-revoke"),
]

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("bot/link-codes/", apis.LinkCodeCreateApi.as_view(), name="link-codes"),
    path("bot/links/", apis.ChatLinkCreateApi.as_view(), name="links"),
    path("bot/links/<int:chat_id>/", apis.ChatLinkDetailApi.as_view(), name="link-detail"),
]
