"""Flood fill that respects the image (Chromium): it follows the lesion's edge on the DWI,
refuses to leak over the slice, reaches through slices in 3-D, and undoes in one step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.annotation.test_editor_browser import js_labels, login, open_editor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _click_voxel(page: Any, kind: str, x: float, y: float) -> None:
    box = page.locator(f"#viewport-{kind} .cs-element").bounding_box()
    canvas = page.evaluate(
        "([k, x, y]) => cornerstone.pixelToCanvas(strokeaidEditor.viewport(k).el, {x, y})",
        [kind, x + 0.5, y + 0.5],
    )
    page.mouse.click(box["x"] + canvas["x"], box["y"] + canvas["y"])


def _set_range(page: Any, selector: str, value: int) -> None:
    page.evaluate(
        """([sel, v]) => { const r = document.querySelector(sel); r.value = String(v);
                          r.dispatchEvent(new Event('input', {bubbles: true})); }""",
        [selector, value],
    )


def test_fill_follows_the_lesion_refuses_leaks_and_goes_3d(
    page, live_server, client, neurologist, phantom_series
):
    dwi = phantom_series["DWI"]
    truth = dwi.case.phantom.mask != 0
    z = int(np.argmax(truth.reshape(truth.shape[0], -1).sum(axis=1)))
    # The lesion's brightest DWI voxel on its largest slice: a click a user would make.
    dwi_image = dwi.case.phantom.images["DWI"]
    masked = np.where(truth[z], dwi_image[z], -np.inf)
    y, x = np.unravel_index(int(np.argmax(masked)), masked.shape)

    login(page, live_server, client, neurologist)
    open_editor(page, live_server, dwi.case)
    page.evaluate(f"strokeaidEditor.viewport('DWI').setSlice({z}, true)")
    page.wait_for_function(f"strokeaidEditor.viewport('DWI').z === {z}")
    page.locator(".tool[data-tool='fill']").click()
    page.locator(".label-button[data-value='2']").click()

    # 2-D: the filled region hugs the lesion on this slice.
    _set_range(page, "#fill-tolerance", 30)
    _click_voxel(page, "DWI", x, y)
    page.wait_for_function("document.querySelector('#fill-status').textContent.includes('Filled')")
    labels = js_labels(page, "DWI").reshape(truth.shape) == 2
    assert labels[z].sum() > 0 and labels.sum() == labels[z].sum()  # this slice only
    overlap = (labels[z] & truth[z]).sum()
    dice = 2 * overlap / (labels[z].sum() + truth[z].sum())
    assert dice > 0.6, dice

    # Undo removes the whole fill in one step.
    page.locator("#undo").click()
    assert (js_labels(page, "DWI") == 2).sum() == 0

    # A click on normal tissue with a wide tolerance would flood the head: refused.
    healthy = np.argwhere(~truth[z] & (dwi_image[z] > np.percentile(dwi_image[z], 60)))
    hy, hx = healthy[len(healthy) // 2]
    _set_range(page, "#fill-tolerance", 50)
    _click_voxel(page, "DWI", hx, hy)
    page.wait_for_function(
        "document.querySelector('#fill-status').textContent.includes('Not filled')"
    )
    assert (js_labels(page, "DWI") != 0).sum() == 0

    # 3-D: the lesion is filled on its neighbouring slices too.
    _set_range(page, "#fill-tolerance", 30)
    page.locator("#fill-3d").check()
    _click_voxel(page, "DWI", x, y)
    page.wait_for_function("document.querySelector('#fill-status').textContent.includes('Filled')")
    labels = js_labels(page, "DWI").reshape(truth.shape) == 2
    slices = {int(k) for k in np.nonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[0]}
    assert len(slices) > 1 and z in slices
    assert (labels & truth).sum() / labels.sum() > 0.6
