"""The editor's labels in real Chromium: the brush starts on the case's etiology, a warning for
other labels, lesion-slice navigation (N / Shift+N) and the notice before editing an
approved mask."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import services
from annotation.models import Annotation

from .test_editor_browser import centre, login, open_editor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_etiology_palette_warning_and_lesion_jump(
    page, live_server, client, neurologist, phantom_series
):
    dwi = phantom_series["DWI"]  # confirmed cardioembolic (label 2)
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    mask[1, 10:20, 10:20] = 2
    mask[6, 30:35, 30:35] = 1  # another etiology: warned about
    services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, dwi.case)
    assert page.evaluate("strokeaidEditor.state.label") == 2
    page.wait_for_selector("#etiology-warning:not([hidden])")
    assert "Atherothrombotic" in page.locator("#etiology-warning").inner_text()

    page.locator("#viewport-DWI .cs-element").click(button="right")  # make DWI active
    page.evaluate("strokeaidEditor.viewport('DWI').setSlice(0, false)")
    page.keyboard.press("n")
    page.wait_for_function("strokeaidEditor.viewport('DWI').z === 1")
    page.keyboard.press("n")
    page.wait_for_function("strokeaidEditor.viewport('DWI').z === 6")
    page.keyboard.press("Shift+N")
    page.wait_for_function("strokeaidEditor.viewport('DWI').z === 1")
    page.locator("#lesion-prev").click()  # wraps around to the last lesion slice
    page.wait_for_function("strokeaidEditor.viewport('DWI').z === 6")
    assert "N / Shift + N" in page.locator("#help-overlay").inner_html()

    # Erasing the other label clears the warning.
    page.evaluate("strokeaidEditor.setLabel(0)")
    page.keyboard.press("Delete")
    page.wait_for_selector("#etiology-warning", state="hidden")


def test_editing_an_approved_mask_asks_first(
    page, live_server, client, neurologist, reviewer, phantom_series
):
    dwi = phantom_series["DWI"]
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    mask[4, 10:20, 10:20] = 2
    revision = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    services.annotation_submit(user=neurologist, annotation=revision.annotation)
    services.annotation_approve(user=reviewer, annotation=revision.annotation)
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, dwi.case)
    messages: list[str] = []

    def decline(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    # Playwright's click waits for the canvas to be stable and hit-testable (under load the
    # toolbar and notices may still move it), then presses at its centre.
    page.locator("#viewport-DWI .cs-element").click()
    page.wait_for_function("document.body.dataset.editorReady === '1'")
    assert messages and "return this mask to draft" in messages[0]
    x, y, _ = centre(page, "DWI")
    assert not page.evaluate(f"strokeaidEditor.series[{dwi.pk}].dirty")

    page.once("dialog", lambda dialog: dialog.accept())
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 5, y + 5, steps=2)
    page.mouse.up()
    assert page.evaluate(f"strokeaidEditor.series[{dwi.pk}].dirty")
    page.locator("#save-button").click()
    page.wait_for_function("document.querySelector('#save-status').textContent === 'Saved'")
    assert Annotation.objects.get(pk=revision.annotation.pk).state == "draft"
