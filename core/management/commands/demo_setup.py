"""``manage.py demo_setup``: demo users per role, phantom demo cases and a demo model (idempotent).

Users and cases that already exist are left as they are, so running it again changes nothing.
The phantom cases go through the real ingestion service as DICOM (the path a hospital upload
takes: de-identification, slice ordering, geometry); their ground-truth masks become approved
annotations, and a small demo model is trained on them (``inference.services.demo``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import user_create
from cases import storage
from cases.models import Case, Series
from cases.phantoms import ETIOLOGIES, PhantomCase, generate_case, write_dicom_series
from cases.services.case import case_create
from cases.services.series import series_create_from_phantom
from etiology.services import workup_replace

DEFAULT_PASSWORD = "strokeaid-demo"  # noqa: S105 - the documented, printed demo default
# (username, roles, superuser): the data manager is "curator", as in the docs.
DEMO_USERS: list[tuple[str, list[str], bool]] = [
    ("admin", [], True),
    ("neuro", ["neurologist"], False),
    ("reviewer", ["reviewer"], False),
    ("curator", ["data_manager"], False),
    ("clinician", ["clinician"], False),
]
KINDS = ("DWI", "ADC", "FLAIR")
SEED_BASE = 4100


class Command(BaseCommand):
    help = "Create demo users (one per role), phantom demo cases and a demo model. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=int, default=12, help="number of demo cases")
        parser.add_argument(
            "--shape", type=int, nargs=3, default=(25, 256, 256), metavar=("Z", "Y", "X")
        )
        parser.add_argument("--seed", type=int, default=SEED_BASE, help="first phantom seed")
        parser.add_argument("--no-model", action="store_true", help="do not train a demo model")
        parser.add_argument(
            "--no-dicom",
            action="store_true",
            help="store phantom arrays directly instead of ingesting DICOM files",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["cases"] < 0:
            raise CommandError("--cases must be >= 0")
        password = os.environ.get("STROKEAID_DEMO_PASSWORD") or DEFAULT_PASSWORD
        users = self._users(password)
        self._cases(
            users,
            count=options["cases"],
            shape=tuple(options["shape"]),
            seed=options["seed"],
            dicom=not options["no_dicom"],
        )
        if options["no_model"]:
            self.stdout.write("Demo model: skipped (--no-model).")
        else:
            self._model()
        self._print_credentials(password)

    # --- users -----------------------------------------------------------------------------
    def _users(self, password: str) -> dict[str, Any]:
        User = get_user_model()
        users: dict[str, Any] = {}
        for username, roles, superuser in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(
                    username=username, password=password, roles=roles, is_superuser=superuser
                )
                self.stdout.write(f"Created user {username}")
            users[username] = user
        return users

    def _print_credentials(self, password: str) -> None:
        from_env = bool(os.environ.get("STROKEAID_DEMO_PASSWORD"))
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo accounts (created by demo_setup):"))
        for username, roles, superuser in DEMO_USERS:
            role = "superuser (all roles, admin site)" if superuser else ", ".join(roles)
            self.stdout.write(f"  {username:<10} {password:<18} {role}")
        if not from_env:
            self.stdout.write("  (default password; set STROKEAID_DEMO_PASSWORD to choose one)")
        self.stdout.write("  Accounts that existed before keep the password they had.\n")

    # --- cases -----------------------------------------------------------------------------
    def _cases(
        self,
        users: dict[str, Any],
        *,
        count: int,
        shape: tuple[int, int, int],
        seed: int,
        dicom: bool,
    ) -> None:
        made = 0
        for index in range(count):
            code = f"DEMO-{index + 1:04d}"
            if Case.objects.filter(code=code).exists():
                continue
            etiology = ETIOLOGIES[index % len(ETIOLOGIES)]
            started = time.monotonic()
            phantom = generate_case(etiology=etiology, seed=seed + index, shape=shape, code=code)
            # Most demo cases are confirmed (they train the model); every fourth is still open.
            confirmed = index % 4 != 3
            with storage.transactional():
                case = case_create(
                    user=users["neuro"],
                    code=code,
                    etiology=etiology,
                    confirmed=confirmed,
                    note="Synthetic phantom (demo data, no patient).",
                )
                series = (
                    self._ingest_dicom(users["neuro"], case, phantom)
                    if dicom
                    else self._store_arrays(case, phantom)
                )
                if "DWI" in series:
                    self._import_mask(users, series["DWI"], phantom)
                workup_replace(user=users["neuro"], case=case, data=phantom.workup)
            made += 1
            self.stdout.write(
                f"Case {code}: {etiology}{' (confirmed)' if confirmed else ''}, "
                f"{len(series)} series, {time.monotonic() - started:.1f} s"
            )
        if not made:
            self.stdout.write("Demo cases: all present.")

    def _ingest_dicom(self, user: Any, case: Case, phantom: PhantomCase) -> dict[str, Series]:
        from cases.services.upload import UploadInput, upload_ingest

        with tempfile.TemporaryDirectory(prefix="strokeaid-demo-") as tmp:
            paths: list[Path] = []
            for kind in KINDS:
                paths += write_dicom_series(phantom, kind, Path(tmp) / kind)
            inputs = [
                UploadInput(name=p.name, size=p.stat().st_size, opener=_opener(p)) for p in paths
            ]
            result = upload_ingest(user=user, case=case, inputs=inputs)
        return {s.kind: s for s in result.series}

    def _store_arrays(self, case: Case, phantom: PhantomCase) -> dict[str, Series]:
        return series_create_from_phantom(
            case=case, phantom=phantom, uid_stem=str(phantom.seed), kinds=KINDS
        )

    def _import_mask(self, users: dict[str, Any], dwi: Series, phantom: PhantomCase) -> None:
        from annotation.services import annotation_import_mask

        if list(dwi.shape) != list(phantom.mask.shape):
            self.stderr.write(f"{dwi.case.code}: DWI grid differs from the phantom's, no mask")
            return
        # The mask is drawn on the phantom's grid: it is only valid on the stored volume if
        # ingestion kept the voxel order (it must). Check before claiming ground truth.
        stored = storage.read_array(dwi.volume.key)
        if np.corrcoef(stored.ravel(), phantom.images["DWI"].ravel())[0, 1] < 0.95:
            self.stderr.write(f"{dwi.case.code}: stored DWI does not match the phantom, no mask")
            return
        annotation_import_mask(
            user=users["reviewer"],
            annotator=users["neuro"],
            series=dwi,
            mask=phantom.mask,
            state="approved",
            note="Phantom ground truth.",
        )

    # --- model -----------------------------------------------------------------------------
    def _model(self) -> None:
        from inference.models import ModelVersion
        from inference.services.demo import demo_model_ensure

        started = time.monotonic()
        if not ModelVersion.objects.exists():
            self.stdout.write(
                "Demo model: training a small U-Net on the demo cases "
                "(1-6 minutes on a 2-core CPU; progress every 5 epochs)...",
            )

        def progress(report: Any) -> None:
            if report.epoch % 5 == 0 or report.epoch == 1:
                self.stdout.write(
                    f"  epoch {report.epoch}: loss {report.train_loss:.3f} "
                    f"({time.monotonic() - started:.0f} s)"
                )
                self.stdout.flush()

        model = demo_model_ensure(on_epoch=progress)
        if model is None:
            self.stdout.write("Demo model: none (nothing to train on, or training failed).")
        else:
            self.stdout.write(f"Demo model: {model} ({time.monotonic() - started:.0f} s)")


def _opener(path: Path) -> Callable[[], Any]:
    @contextmanager
    def _open() -> Any:
        with open(path, "rb") as fh:
            yield fh

    return _open
