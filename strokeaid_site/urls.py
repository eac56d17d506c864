"""Root URL configuration: pages, the REST API under /api/, schema and health."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

import annotation.urls
import cases.urls
import inference.urls
from accounts.apis import TokenObtainApi

from .health import healthz

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Only the token route, the schema and /healthz answer anonymous callers (API contract):
    # the browsable docs need a signed-in user (the browser's session).
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[IsAuthenticated]),
        name="docs",
    ),
    path("", include((cases.urls.api_urlpatterns, "cases"), namespace="cases-api")),
    path("", include((annotation.urls.api_urlpatterns, "annotation"), namespace="annotation-api")),
    path("", include((inference.urls.api_urlpatterns, "inference"), namespace="inference-api")),
]

# Unknown routes under /api/ answer the API's JSON error shape (pages keep the HTML 404).
handler404 = "strokeaid_site.errors.not_found_handler"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/", include(api_urlpatterns)),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("annotation/", include("annotation.urls")),
    path("models/", include("inference.urls")),
    path("", include("cases.urls")),
]
