"""Consistency checks in the editor's side panel and the review queue, in real Chromium."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotation.services import annotation_import_mask, annotation_submit
from cases.models import Series
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_editor_and_review_queue_show_the_case_checks(
    page: Any,
    live_server: Any,
    make_phantom_case: Any,
    neurologist: Any,
    reviewer: Any,
    data_manager: Any,
) -> None:
    # Cardioembolic with no cardiac source documented: one open check.
    case = make_phantom_case("cardioembolic", mask=False)
    dwi = Series.objects.get(case=case, kind="DWI")
    mask = np.zeros(tuple(dwi.shape), dtype=np.uint8)
    mask[2:4, 20:30, 20:30] = 2  # cardioembolic
    annotation = annotation_import_mask(
        user=data_manager, series=dwi, mask=mask, annotator=neurologist
    )
    annotation_submit(user=neurologist, annotation=annotation)
    login(page, live_server.url, neurologist)
    page.goto(f"{live_server.url}/annotation/cases/{case.pk}/")
    page.wait_for_selector("#editor-checks li[data-code='cardio_no_source']", timeout=10000)
    assert "cardiac source" in page.inner_text("#editor-checks")
    page.context.clear_cookies()
    login(page, live_server.url, reviewer)
    page.goto(f"{live_server.url}/annotation/review/")
    page.wait_for_selector(
        f"[data-checks-case='{case.pk}'] li[data-code='cardio_no_source']", timeout=10000
    )
