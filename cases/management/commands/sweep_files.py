"""``manage.py sweep_files``: delete stored files no row references (orphans of killed
uploads, deleted cases, abandoned staging) and stale upload temp files; run by ``serve`` at
start."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from cases.storage import orphans_sweep


def upload_temp_sweep(*, older_than: timedelta, dry_run: bool = False) -> list[Path]:
    """Django's spooled upload files (``FILE_UPLOAD_TEMP_DIR``) left by a killed server."""
    folder = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    if not folder or not Path(folder).is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    stale = [p for p in Path(folder).iterdir() if p.is_file() and p.stat().st_mtime < cutoff]
    if not dry_run:
        for path in stale:
            path.unlink(missing_ok=True)
    return stale


class Command(BaseCommand):
    help = "Delete stored files that no database row references, and stale upload temp files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=60.0,
            help="grace period: younger files may belong to work in flight (default 60)",
        )
        parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = timedelta(minutes=options["older_than_minutes"])
        dry = options["dry_run"]
        keys = orphans_sweep(older_than=older_than, dry_run=dry)
        temps = upload_temp_sweep(older_than=older_than, dry_run=dry)
        verb = "would delete" if dry else "deleted"
        for key in keys:
            self.stdout.write(f"{verb} {key}")
        for path in temps:
            self.stdout.write(f"{verb} temp {path.name}")
        self.stdout.write(f"{verb} {len(keys)} orphan files and {len(temps)} temp files")
