"""The clinician sees the prediction: "Open in the editor" from the case page opens on the
slice where the predicted lesion is largest, with the prediction shown filled in its label
colour and every class's probability beside it (Chromium)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cases.models import Label
from tests.annotation.test_editor_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _done_prediction(case: Any, model: Any, user: Any, store: Any) -> tuple[Any, int]:
    """A finished prediction whose largest lesion lies on a slice that is neither the first
    nor the middle one."""
    nz, ny, nx = (int(n) for n in case.series.get(kind="DWI").shape)
    target = 1 if nz // 2 != 1 else 2
    labels = np.zeros((nz, ny, nx), np.uint8)
    labels[target, 20:40, 16:36] = 2  # cardioembolic, the largest area
    labels[nz - 1, 30:33, 30:33] = 2
    job = store(
        case=case, model=model, labels=labels, etiology="cardioembolic", user=user, confidence=0.71
    )
    return job, target


def test_open_in_the_editor_shows_the_prediction_on_its_largest_slice(
    page, live_server, client, neurologist, make_phantom_case, registered_model, store_prediction
):
    case = make_phantom_case("cardioembolic", created_by=neurologist, mask=False)
    model = registered_model()
    job, target = _done_prediction(case, model, neurologist, store_prediction)
    login(page, live_server, client, neurologist)
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    link = page.locator(f"tr[data-prediction='{job.pk}'] a", has_text="Open in the editor")
    link.click()
    page.wait_for_selector("body[data-prediction-shown='1']", timeout=15000)
    assert page.locator("#toggle-prediction").is_checked()
    assert page.evaluate("strokeaidEditor.viewport('DWI').z") == target
    assert page.evaluate("strokeaidEditor.viewport('FLAIR').z") == target  # synced

    # The side panel names the answer and every class's probability, highest first.
    panel = page.locator("#prediction-panel")
    assert "Cardioembolic" in panel.locator(".prediction-answer").inner_text()
    assert "71 %" in panel.inner_text()
    rows = panel.locator(".prediction-probabilities tr")
    assert rows.count() == Label.objects.filter(label_set=model.label_set).count()
    assert "Cardioembolic" in rows.nth(0).inner_text()

    # Filled, not an outline: the lesion's centre pixel carries the label colour.
    colour = Label.objects.get(label_set=model.label_set, value=2).color.lstrip("#")
    want = [int(colour[i : i + 2], 16) for i in (0, 2, 4)]
    rgb = page.evaluate(
        """() => {
            const vp = strokeaidEditor.viewport('DWI');
            const p = cornerstone.pixelToCanvas(vp.el, {x: 26.5, y: 30.5});
            const c = vp.el.querySelector('canvas');
            const d = c.getContext('2d').getImageData(Math.round(p.x), Math.round(p.y), 1, 1).data;
            return [d[0], d[1], d[2]];
        }"""
    )
    # Blended at the mask opacity over a grey image: the label's dominant channel wins.
    dominant = int(np.argmax(want))
    assert int(np.argmax(rgb)) == dominant, (rgb, want)
    assert rgb[dominant] - min(rgb) > 40, rgb
