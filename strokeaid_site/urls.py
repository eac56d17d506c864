"""Root URL configuration: pages, the REST API under /api/, schema and health."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated

import annotation.urls
import bot.urls
import cases.urls
import etiology.urls
import gateway.urls
import inference.urls
from accounts.apis import TokenObtainApi

from .errors import api_not_found
from .health import healthz

# The split view serves its start-up script as a file: no inline script for the CSP.
_swagger = SpectacularSwaggerSplitView.as_view(
    url_name="schema", permission_classes=[IsAuthenticated]
)


def api_docs(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The browsable API docs; a browser that is not signed in is sent to the login page."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return _swagger(request, *args, **kwargs)


api_urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Only the token route, the schema and /healthz answer anonymous callers (API contract):
    # the browsable docs need a signed-in user (the browser's session).
    path("docs/", api_docs, name="docs"),
    path("", include((cases.urls.api_urlpatterns, "cases"), namespace="cases-api")),
    path("", include((annotation.urls.api_urlpatterns, "annotation"), namespace="annotation-api")),
    path("", include((inference.urls.api_urlpatterns, "inference"), namespace="inference-api")),
    path("", include((etiology.urls.api_urlpatterns, "etiology"), namespace="etiology-api")),
    path("", include((bot.urls.api_urlpatterns, "bot"), namespace="bot-api")),
    path("", include((gateway.urls.api_urlpatterns, "gateway"), namespace="gateway-api")),
    # Last: any other /api/ path is a JSON 404, with DEBUG too (handler404 is skipped then).
    re_path(r"^.*$", api_not_found, name="not-found"),
]

# Unknown routes under /api/ answer the API's JSON error shape (pages keep the HTML 404).
handler404 = "strokeaid_site.errors.not_found_handler"
handler500 = "strokeaid_site.errors.server_error_handler"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/", include(api_urlpatterns)),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("annotation/", include("annotation.urls")),
    path("models/", include("inference.urls")),
    path("etiology/", include("etiology.urls")),
    path("bot/", include("bot.urls")),
    path("pacs/", include("gateway.urls")),
    path("dicomweb/", include("gateway.dicomweb_urls")),
    path("", include("cases.urls")),
]
