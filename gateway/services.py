"""Writes of the DICOM gateway: spooling received instances, ingesting complete studies.

Instances arrive one C-STORE at a time. Each is written to the spool on disk (never held in
memory) under its study's keyed hash, and the study's row remembers when the last one came.
A study with no new instance for the configured quiet period is complete: it is ingested
through the very upload service browser and REST uploads use (``cases.services.upload``:
same parsing, grouping, typing and de-identification) into a new case with a pseudonymous
code, and, when asked and a model is active, predicted. The spool survives a restart: rows
and files are on disk, and a listener that starts again picks up what is due.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER
from cases.services.case import case_create
from cases.services.upload import UploadInput, upload_ingest
from gateway.models import ReceivedStudy
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError

logger = logging.getLogger(__name__)

#: The account the gateway creates cases as (a data manager without a password).
GATEWAY_USERNAME = "dicom-gateway"


def _key(uid: str) -> str:
    secret = str(app_settings.UID_SECRET).encode()
    return hmac.new(secret, uid.strip().rstrip("\x00").encode(), hashlib.sha256).hexdigest()


def spool_root() -> Path:
    root = Path(app_settings.DATA_DIR) / "spool" / "gateway"
    root.mkdir(parents=True, exist_ok=True)
    return root


def study_key(study_uid: str) -> str:
    """A keyed hash of the Study Instance UID: the same study always has the same key, and the
    key says nothing about the patient."""
    return _key(study_uid)


def instance_spool(*, data: bytes, study_uid: str, sop_uid: str, calling_ae: str) -> ReceivedStudy:
    """Writes one received instance (a PS3.10 file's bytes) to the spool and notes it on the
    study's row. An instance of a study already ingested is counted and dropped: a PACS that
    sends a study twice does not make a second case."""
    key = study_key(study_uid)
    now = timezone.now()
    study = ReceivedStudy.objects.filter(study_key=key).first()
    if study is not None and study.state not in (
        ReceivedStudy.State.RECEIVING,
        ReceivedStudy.State.INGESTING,
    ):
        ReceivedStudy.objects.filter(pk=study.pk).update(duplicates=F("duplicates") + 1)
        study.refresh_from_db()
        return study
    folder = spool_root() / key
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{_key(sop_uid)[:40]}.dcm"
    new = not target.exists()
    # Atomic: a file in the spool is always whole (a killed listener leaves a .part at most).
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    with transaction.atomic():
        try:
            study, _created = ReceivedStudy.objects.get_or_create(
                study_key=key, defaults={"calling_ae": calling_ae[:16], "last_at": now}
            )
        except IntegrityError:  # two associations of one study at once
            study = ReceivedStudy.objects.get(study_key=key)
        ReceivedStudy.objects.filter(pk=study.pk).update(
            last_at=now,
            instances=F("instances") + (1 if new else 0),
            duplicates=F("duplicates") + (0 if new else 1),
        )
    study.refresh_from_db()
    return study


def spool_recover() -> list[str]:
    """Rows for spooled studies a killed listener had not noted yet (files without a row);
    returns their keys. Half-written ``.part`` files are removed."""
    recovered = []
    for folder in spool_root().iterdir():
        if not folder.is_dir():
            continue
        for part in folder.glob("*.part"):
            part.unlink(missing_ok=True)
        count = len(list(folder.glob("*.dcm")))
        if not count or ReceivedStudy.objects.filter(study_key=folder.name).exists():
            continue
        ReceivedStudy.objects.create(
            study_key=folder.name, calling_ae="?", instances=count, last_at=timezone.now()
        )
        recovered.append(folder.name)
    return recovered


def studies_due(*, quiet_seconds: float) -> list[ReceivedStudy]:
    """Studies still receiving with no new instance for ``quiet_seconds``."""
    limit = timezone.now() - timedelta(seconds=quiet_seconds)
    return list(
        ReceivedStudy.objects.filter(state=ReceivedStudy.State.RECEIVING, last_at__lte=limit)
    )


def gateway_user() -> User:
    """The account gateway cases are created by (a data manager; no password)."""
    user, created = get_user_model().objects.get_or_create(username=GATEWAY_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name=DATA_MANAGER)[0])
    return user


def _inputs(folder: Path) -> list[UploadInput]:
    def opener(path: Path):  # type: ignore[no-untyped-def]
        @contextmanager
        def _open() -> Iterator[IO[bytes]]:
            with path.open("rb") as fh:
                yield fh

        return _open

    return [
        UploadInput(name=f"pacs/{p.name}", size=p.stat().st_size, opener=opener(p))
        for p in sorted(folder.glob("*.dcm"))
    ]


def study_ingest(
    *, study: ReceivedStudy, autopredict: bool, user: User | None = None, via: str = "dicom-gateway"
) -> ReceivedStudy:
    """Ingests a complete study into a new case (and requests its prediction).

    ``user`` creates the case (the gateway's own account when ``None``, as for C-STORE);
    ``via`` names the way the study came in the case's origin.
    """
    claimed = ReceivedStudy.objects.filter(pk=study.pk, state=ReceivedStudy.State.RECEIVING).update(
        state=ReceivedStudy.State.INGESTED, ingested_at=timezone.now()
    )
    if not claimed:
        study.refresh_from_db()
        return study  # another listener took it
    folder = spool_root() / study.study_key
    user = user or gateway_user()
    try:
        inputs = _inputs(folder)
        if not inputs:
            raise ApplicationError(_("No instance of the study is in the spool."))
        with transaction.atomic():
            case = case_create(
                user=user,
                code=f"GW-{secrets.token_hex(4).upper()}",
                origin={"via": via, "calling_ae": study.calling_ae},
            )
            upload_ingest(user=user, case=case, inputs=inputs)
        ReceivedStudy.objects.filter(pk=study.pk).update(case=case, error="")
        study.case = case
    except Exception as exc:  # noqa: BLE001 - the study is marked failed with the reason
        message = exc.message if isinstance(exc, ApplicationError) else type(exc).__name__
        logger.warning("gateway: study %s could not be ingested: %s", study.pk, message)
        ReceivedStudy.objects.filter(pk=study.pk).update(
            state=ReceivedStudy.State.FAILED, error=str(message)[:2000]
        )
        study.refresh_from_db()
        return study
    # The original headers stay, encrypted, for the results sent back to the PACS; the
    # spooled originals go (the series are stored, de-identified).
    from gateway.results import linkage_store

    try:
        linkage_store(study=study, folder=folder)
    except Exception:  # noqa: BLE001 - the case stands; only the way back is lost
        logger.warning("gateway: the linkage of study %s could not be stored", study.pk)
    shutil.rmtree(folder, ignore_errors=True)
    ReceivedStudy.objects.filter(pk=study.pk).update(
        state=ReceivedStudy.State.INGESTED, ingested_at=timezone.now()
    )
    if autopredict:
        _predict(study_id=study.pk, case=case, user=user)
    study.refresh_from_db()
    return study


def _predict(*, study_id: int, case: object, user: User) -> None:
    from inference.selectors import model_active_get
    from inference.services.prediction import prediction_request

    if model_active_get() is None:
        return
    with contextlib.suppress(ApplicationError):
        job, _created = prediction_request(user=user, case=case)  # type: ignore[arg-type]
        ReceivedStudy.objects.filter(pk=study_id).update(
            state=ReceivedStudy.State.PREDICTED, prediction_id=job.pk
        )
