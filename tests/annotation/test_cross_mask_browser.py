"""One mask across sequences (Chromium): the DWI mask shows on ADC and FLAIR, is edited
there when the grids match, and is resampled through the affines when they do not."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.models import Annotation
from annotation.selectors import mask_array
from tests.annotation.test_editor_browser import centre, js_labels, login, open_editor
from tests.cases.test_orientation_api import ORIENTATIONS, _marker_zyx, _nifti_bytes
from tests.cases.upload_fixtures import uploaded
from tests.factories import CaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dwi_mask_shows_on_the_others_and_is_edited_there_on_a_shared_grid(
    page, live_server, client, neurologist, phantom_series
):
    dwi = phantom_series["DWI"]
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, dwi.case)
    z = page.evaluate("strokeaidEditor.viewport('DWI').z")
    x, y, size = centre(page, "DWI")
    page.locator(".tool[data-tool='brush']").click()
    page.locator(".label-button[data-value='2']").click()
    page.mouse.move(x - size * 0.1, y)
    page.mouse.down()
    page.mouse.move(x + size * 0.05, y, steps=6)
    page.mouse.up()
    painted = js_labels(page, "DWI").reshape(tuple(dwi.shape))[z]
    assert (painted == 2).sum() > 20
    # Shown (read-only) on ADC and FLAIR: the very same voxels.
    for kind in ("ADC", "FLAIR"):
        shown = np.array(page.evaluate(f"strokeaidEditor.crossShown('{kind}', {z})"), np.uint8)
        np.testing.assert_array_equal(shown.reshape(painted.shape), painted)
        assert (js_labels(page, kind) != 0).sum() == 0  # their own masks untouched

    # "Edit there": a stroke on FLAIR paints the DWI mask.
    page.select_option("#cross-mask", "edit")
    fx, fy, fsize = centre(page, "FLAIR")
    page.mouse.move(fx, fy + fsize * 0.15)
    page.mouse.down()
    page.mouse.move(fx + fsize * 0.1, fy + fsize * 0.15, steps=6)
    page.mouse.up()
    after = js_labels(page, "DWI").reshape(tuple(dwi.shape))[z]
    assert (after == 2).sum() > (painted == 2).sum() + 10
    assert (js_labels(page, "FLAIR") != 0).sum() == 0
    page.keyboard.press("Control+s")
    page.wait_for_function("document.querySelector('#save-status').textContent === 'Saved'")
    saved = Annotation.objects.filter(series__case=dwi.case, annotator=neurologist)
    assert [a.series.kind for a in saved] == ["DWI"]  # one mask, not three
    stored = mask_array(revision=saved.get().current_revision)
    np.testing.assert_array_equal(stored[z], after)


def test_other_grid_shows_the_mask_resampled_through_the_affines(
    page, live_server, client, api_client_for, neurologist
):
    case = CaseFactory(created_by=neurologist)
    api = api_client_for(neurologist)
    for kind, name in (("DWI", "LAS"), ("FLAIR", "PRS")):
        response = api.post(
            f"/api/cases/{case.pk}/uploads/",
            {"files": [uploaded(f"{kind}.nii.gz", _nifti_bytes(ORIENTATIONS[name]))], "kind": kind},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
    dwi_marker = _marker_zyx(ORIENTATIONS["LAS"])
    flair_marker = _marker_zyx(ORIENTATIONS["PRS"])
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, case)
    # Paint the DWI marker's voxels through the editor's own label buffer.
    idx = np.flatnonzero(dwi_marker).tolist()
    page.evaluate(
        """(idx) => { const s = strokeaidEditor.viewport('DWI').s;
                      for (const i of idx) s.labels[i] = 1; }""",
        idx,
    )
    z = int(np.argwhere(flair_marker)[0][0])
    shown = np.array(page.evaluate(f"strokeaidEditor.crossShown('FLAIR', {z})"), np.uint8)
    shown = shown.reshape(flair_marker.shape[1:])
    # The DWI marker lands on the FLAIR marker's voxels although the voxel orders differ.
    np.testing.assert_array_equal(shown != 0, flair_marker[z])
