"""Extension points of the case page: other apps add panels and action links without editing it.

Register in your ``AppConfig.ready()``::

    from cases.panels import register_case_panel, register_case_action

    register_case_panel("inference/_case_predictions.html", predictions_context, order=20)
    register_case_action(_("Open editor"), lambda request, case: f"/annotation/cases/{case.pk}/")

A panel's ``context_fn(request, case)`` returns the template's context, or ``None`` to hide
the panel (e.g. for a role that may not see it). An action's ``url_fn(request, case)`` returns
the link, or ``None`` to hide it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from cases.models import Case

PanelContext = Callable[[HttpRequest, Case], dict[str, Any] | None]
ListPanelContext = Callable[[HttpRequest], dict[str, Any] | None]
logger = logging.getLogger(__name__)

ActionUrl = Callable[[HttpRequest, Case], str | None]


@dataclass(frozen=True)
class CasePanel:
    template_name: str
    context_fn: PanelContext | None
    order: int


@dataclass(frozen=True)
class CaseAction:
    title: Any  # str or lazy translation
    url_fn: ActionUrl
    order: int
    css_class: str


_panels: dict[str, CasePanel] = {}
_list_panels: dict[str, tuple[ListPanelContext, int]] = {}
_actions: dict[str, CaseAction] = {}


def register_case_panel(
    template_name: str, context_fn: PanelContext | None = None, *, order: int = 100
) -> None:
    """Adds (or replaces, by template name) a panel rendered below the case's images."""
    _panels[template_name] = CasePanel(template_name, context_fn, order)


def register_case_action(
    title: Any, url_fn: ActionUrl, *, order: int = 100, css_class: str = "button", key: str = ""
) -> None:
    """Adds (or replaces, by ``key`` or title) a link in the case page's action bar."""
    _actions[key or str(title)] = CaseAction(title, url_fn, order, css_class)


def case_panels_render(request: HttpRequest, case: Case) -> list[SafeString]:
    """The registered panels rendered for ``case`` (hidden ones left out), in order."""
    out: list[SafeString] = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.template_name)):
        try:
            context = panel.context_fn(request, case) if panel.context_fn else {}
            if context is None:
                continue
            html = render_to_string(panel.template_name, {"case": case, **context}, request=request)
        except Exception:
            # One broken panel must not take the case page (images, facts) down with it.
            logger.exception("case panel %s failed", panel.template_name)
            continue
        out.append(mark_safe(html))  # noqa: S308 - rendered by Django's autoescaping engine
    return out


def case_actions_for(request: HttpRequest, case: Case) -> list[dict[str, Any]]:
    """The registered action links for ``case``: ``[{"title", "url", "css_class"}]``."""
    out = []
    for action in sorted(_actions.values(), key=lambda a: (a.order, str(a.title))):
        url = action.url_fn(request, case)
        if url:
            out.append({"title": action.title, "url": url, "css_class": action.css_class})
    return out


def register_case_list_panel(
    template_name: str, context_fn: ListPanelContext, *, order: int = 100
) -> None:
    """Adds (or replaces) a panel on the case list above the table (e.g. an import dialog);
    ``context_fn(request)`` returns its context or ``None`` to hide it."""
    _list_panels[template_name] = (context_fn, order)


def case_list_panels_render(request: HttpRequest) -> list[SafeString]:
    """The registered case-list panels rendered for ``request`` (hidden ones left out)."""
    out: list[SafeString] = []
    for name, (context_fn, _order) in sorted(_list_panels.items(), key=lambda i: (i[1][1], i[0])):
        try:
            context = context_fn(request)
            if context is None:
                continue
            html = render_to_string(name, context, request=request)
        except Exception:
            logger.exception("case list panel %s failed", name)
            continue
        out.append(mark_safe(html))  # noqa: S308 - rendered by Django's autoescaping engine
    return out
