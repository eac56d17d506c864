"""The top navigation: apps register menu items; a context processor gives ``nav_items``.

Register in an ``AppConfig.ready()``::

    from strokeaid_site.navigation import register_nav_item
    register_nav_item(_("Models"), "inference:models", roles={"data_manager"}, order=30)

``base.html`` renders ``nav_items`` after "Cases". ``roles``: shown only to users holding one
of them (superusers hold all); None shows the item to every signed-in user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from accounts.roles import user_roles


@dataclass(frozen=True)
class NavItem:
    title: Any
    url_name: str
    roles: frozenset[str] | None
    order: int


_items: dict[str, NavItem] = {}


def register_nav_item(
    title: Any, url_name: str, *, roles: Iterable[str] | None = None, order: int = 100
) -> None:
    """Adds (or replaces, by URL name) a top-menu link; ``url_name`` is reversed per request."""
    _items[url_name] = NavItem(title, url_name, frozenset(roles) if roles else None, order)


def nav_items(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``nav_items`` = ``[{"title", "url"}]`` the user may follow."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not _items:
        return {"nav_items": []}
    roles = user_roles(user)
    items = []
    for item in sorted(_items.values(), key=lambda i: (i.order, i.url_name)):
        if item.roles is not None and not (item.roles & roles):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue  # the app's page is not routed (yet): no dead link in the menu
        items.append({"title": item.title, "url": url})
    return {"nav_items": items}
