"""Fixtures of the cases tests (the phantom case fixtures live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cases import rendering
from cases.apis.series import file_caches_clear


@pytest.fixture(autouse=True)
def _fresh_render_caches() -> Iterator[None]:
    """Each test starts with empty per-process volume/PNG caches (ids repeat across tests)."""
    rendering.caches_clear()
    file_caches_clear()
    yield
    rendering.caches_clear()
    file_caches_clear()
