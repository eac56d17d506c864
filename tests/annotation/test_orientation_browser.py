"""The editor shows real-world voxel orders radiologically, and a stroke on the turned picture
lands on the voxels under it (Chromium)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotation.models import Annotation
from annotation.selectors import mask_array
from tests.annotation.test_editor_browser import login, open_editor
from tests.cases.test_orientation_api import ORIENTATIONS, _marker_zyx, _nifti_bytes
from tests.cases.upload_fixtures import uploaded
from tests.factories import CaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _upload(client: Any, user: Any, name: str) -> Any:
    case = CaseFactory(created_by=user)
    response = client.post(
        f"/api/cases/{case.pk}/uploads/",
        {"files": [uploaded("flair.nii.gz", _nifti_bytes(ORIENTATIONS[name]))], "kind": "FLAIR"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    return case


@pytest.mark.parametrize("name", ["LAS", "PRS"])
def test_stroke_on_the_radiological_picture_lands_on_the_marker(
    page, live_server, client, api_client_for, neurologist, name
):
    case = _upload(api_client_for(neurologist), neurologist, name)
    marker = _marker_zyx(ORIENTATIONS[name])
    z = int(np.argwhere(marker)[0][0])
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, case)
    letters = {
        edge: page.locator(f"#viewport-FLAIR .vp-orient-{edge}").inner_text()
        for edge in ("top", "bottom", "left", "right")
    }
    assert letters == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    page.evaluate(f"strokeaidEditor.viewport('FLAIR').setSlice({z}, true)")
    page.wait_for_function(f"strokeaidEditor.viewport('FLAIR').z === {z}")

    # Where is the marker on screen? Ask Cornerstone for the page position of its centre
    # voxel (pixelToCanvas follows the viewport's flips and turn).
    yy, xx = np.argwhere(marker[z])[:, :2].mean(axis=0)
    box = page.locator("#viewport-FLAIR .cs-element").bounding_box()
    canvas = page.evaluate(
        "([x, y]) => cornerstone.pixelToCanvas(strokeaidEditor.viewport('FLAIR').el, {x, y})",
        [float(xx) + 0.5, float(yy) + 0.5],
    )
    # Front right of the patient is the picture's top left.
    assert canvas["x"] < box["width"] / 2 and canvas["y"] < box["height"] / 2, canvas

    page.locator(".tool[data-tool='brush']").click()
    page.evaluate(
        """() => { const r = document.querySelector('#brush-radius');
                   r.value = '2'; r.dispatchEvent(new Event('input', {bubbles: true})); }"""
    )
    page.mouse.click(box["x"] + canvas["x"], box["y"] + canvas["y"])
    page.keyboard.press("Control+s")
    page.wait_for_function("document.querySelector('#save-status').textContent === 'Saved'")
    annotation = Annotation.objects.get(series__case=case, annotator=neurologist)
    stored = mask_array(revision=annotation.current_revision) != 0
    assert stored.sum() > 0
    # Most painted voxels are marker voxels: the click landed where the user saw the marker.
    assert (stored & marker).sum() / stored.sum() > 0.5, (stored.sum(), (stored & marker).sum())
