"""``python manage.py dicom_listener``: the DICOM C-STORE receiver of the gateway.

Settings (environment): ``STROKEAID_DICOM_AE_TITLE`` (default ``STROKEAID``),
``STROKEAID_DICOM_PORT`` (11112), ``STROKEAID_DICOM_PEERS`` (comma-separated calling AE titles
accepted; none: every association is rejected), ``STROKEAID_DICOM_STUDY_TIMEOUT`` (seconds of
quiet that complete a study, 30) and ``STROKEAID_DICOM_AUTOPREDICT`` (predict complete
studies when a model is active). SIGTERM/SIGINT stop it; spooled studies survive.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from gateway.listener import DicomListener, ListenerConfig
from strokeaid_site.conf import app_settings


def listener_config(**overrides: Any) -> ListenerConfig:
    peers = [p.strip() for p in str(app_settings.DICOM_PEERS or "").split(",") if p.strip()]
    values: dict[str, Any] = {
        "ae_title": str(app_settings.DICOM_AE_TITLE),
        "port": int(app_settings.DICOM_PORT),
        "peers": peers,
        "study_timeout": float(app_settings.DICOM_STUDY_TIMEOUT),
        "autopredict": bool(app_settings.DICOM_AUTOPREDICT),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ListenerConfig(**values)


class Command(BaseCommand):
    help = "Runs the DICOM C-STORE receiver (studies from a PACS become cases)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        config = listener_config(port=options["port"])
        listener = DicomListener(config)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        listener.start()
        self.stdout.write(
            f"DICOM listener {config.ae_title} on port {config.port}; accepted peers: "
            f"{', '.join(config.peers) or 'none (set STROKEAID_DICOM_PEERS)'}"
        )
        stop.wait()
        self.stdout.write("DICOM listener: stopping (spooled studies are kept)")
        listener.stop()
