"""ASGI entry point: HTTP through Django, websockets (job progress) through channels."""

import os
from typing import cast

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "strokeaid_site.settings.local")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from cases.asgi import AsgiApp, SliceFastPath  # noqa: E402

from .bodylimit import BodyLimit  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Cached, already-authorised slice PNGs skip Django's stack (see cases/asgi.py); bodies
        # over their route's limit are refused before Django reads them (bodylimit.py).
        # django-stubs types ASGIHandler's scope as dict; at run time it is the same mapping.
        "http": BodyLimit(SliceFastPath(cast(AsgiApp, django_asgi_app))),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
