"""The C-STORE SCP (pynetdicom): a PACS or scanner sends studies; complete ones become cases.

Only the calling AE titles configured as peers are accepted (others are rejected at
association); every storage SOP class and the common transfer syntaxes are offered. Each
received instance goes to the spool on disk; a checker thread ingests studies that have been
quiet for the configured period. ``stop()`` (SIGTERM) closes the server and lets the study in
hand finish; whatever was received and not yet ingested stays in the spool for the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from gateway import services

logger = logging.getLogger(__name__)

#: DICOM status codes of the C-STORE response.
_SUCCESS = 0x0000
_OUT_OF_RESOURCES = 0xA700
_CANNOT_UNDERSTAND = 0xC000


@dataclass
class ListenerConfig:
    ae_title: str
    port: int
    peers: list[str]
    study_timeout: float
    autopredict: bool
    host: str = "0.0.0.0"  # noqa: S104 - a DICOM node listens on its network
    # How often complete studies and finished predictions are looked for: a few cheap
    # queries, and every check interval adds to the time until results reach the PACS.
    check_seconds: float = 0.25


class DicomListener:
    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self._server: Any = None
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None
        self._next_purge = 0.0

    # --- C-STORE ---------------------------------------------------------------------------------
    def _on_store(self, event: Any) -> int:
        try:
            ds = event.dataset
            study_uid = str(ds.get("StudyInstanceUID", "") or "")
            sop_uid = str(ds.get("SOPInstanceUID", "") or "")
        except Exception:  # noqa: BLE001 - any decoding failure is "cannot understand"
            return _CANNOT_UNDERSTAND
        if not study_uid or not sop_uid:
            return _CANNOT_UNDERSTAND
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            data = event.encoded_dataset(include_meta=True)
            services.instance_spool(
                data=bytes(data), study_uid=study_uid, sop_uid=sop_uid, calling_ae=calling
            )
        except Exception:
            logger.exception("gateway: an instance could not be spooled")
            return _OUT_OF_RESOURCES
        finally:
            close_old_connections()
        return _SUCCESS

    # --- complete studies ------------------------------------------------------------------------
    def check_once(self) -> int:
        """Ingests every study that is due; returns how many."""
        from gateway import results

        done = 0
        try:
            for study in services.studies_due(quiet_seconds=self.config.study_timeout):
                services.study_ingest(study=study, autopredict=self.config.autopredict)
                done += 1
            # Results of finished predictions back to the PACS (retried with back-off).
            for study in results.results_due():
                results.study_results_send(study=study)
            if time.monotonic() >= self._next_purge:
                results.linkage_purge()
                self._next_purge = time.monotonic() + 60.0
        finally:
            close_old_connections()
        return done

    def _check_loop(self) -> None:
        while not self._stop.wait(self.config.check_seconds):
            try:
                self.check_once()
            except Exception:
                logger.exception("gateway: checking for complete studies failed")

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        services.spool_recover()
        close_old_connections()
        ae = AE(ae_title=self.config.ae_title)
        for context in StoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(self.config.peers)
        ae.maximum_pdu_size = 0  # no limit
        handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server(
            (self.config.host, self.config.port), block=False, evt_handlers=handlers
        )
        self._checker = threading.Thread(target=self._check_loop, name="gateway-check")
        self._checker.start()
        logger.info(
            "gateway: %s listening on port %s (peers: %s)",
            self.config.ae_title,
            self.config.port,
            ", ".join(self.config.peers) or "none",
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stop.set()
        if self._checker is not None:
            self._checker.join(timeout=600)
            self._checker = None
