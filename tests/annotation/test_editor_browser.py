"""The slice editor in real Chromium: open, scroll, window/level, paint, undo/redo, polygon,
save, reload, conflict, and the reviewer's approve/return."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from annotation import services
from annotation.models import Annotation
from annotation.selectors import mask_array

# live_server runs in another thread: the data must be committed (transaction=True).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page: Any, live_server: Any, client: Any, user: Any) -> None:
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def open_editor(page: Any, live_server: Any, case: Any, query: str = "") -> None:
    page.add_init_script("window.STROKEAID_AUTOSAVE_MS = 0;")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/annotation/cases/{case.pk}/{query}")
    page.wait_for_selector("body[data-first-render='1']", timeout=15000)
    page.wait_for_selector("body[data-editor-ready='1']", timeout=15000)
    assert not errors, errors


def centre(page: Any, kind: str) -> tuple[float, float, float]:
    box = page.locator(f"#viewport-{kind} .cs-element").bounding_box()
    return (
        box["x"] + box["width"] / 2,
        box["y"] + box["height"] / 2,
        min(box["width"], box["height"]),
    )


def js_labels(page: Any, kind: str) -> np.ndarray:
    b64 = page.evaluate(
        """(kind) => {
            const s = strokeaidEditor.viewport(kind).s;
            let bin = "";
            for (let i = 0; i < s.labels.length; i++) bin += String.fromCharCode(s.labels[i]);
            return btoa(bin);
        }""",
        kind,
    )
    return np.frombuffer(base64.b64decode(b64), np.uint8)


def test_paint_undo_redo_polygon_save_and_reload(
    page, live_server, client, neurologist, phantom_series
):
    dwi = phantom_series["DWI"]
    case = dwi.case
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, case)
    assert page.locator(".viewport").count() == 3
    assert "DWI" in page.locator("#viewport-DWI .vp-info").first.inner_text()

    # Scroll: the wheel moves DWI one slice and ADC/FLAIR follow (same position).
    x, y, size = centre(page, "DWI")
    z0 = page.evaluate("strokeaidEditor.viewport('DWI').z")
    page.mouse.move(x, y)
    page.mouse.wheel(0, 120)
    page.wait_for_function(f"strokeaidEditor.viewport('DWI').z === {z0 + 1}")
    page.wait_for_function(f"strokeaidEditor.viewport('ADC').z === {z0 + 1}")
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"strokeaidEditor.viewport('FLAIR').z === {z0}")
    page.wait_for_function(
        "(t) => document.querySelector('#viewport-DWI .vp-slice').textContent.includes(t)",
        arg=f"{z0 + 1} / {dwi.shape[0]}",
    )

    # Window/level: right-drag changes the DWI window, not the image data.
    before = page.evaluate("cornerstone.getViewport(strokeaidEditor.viewport('DWI').el).voi")
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 60, y + 30, steps=5)
    page.mouse.up(button="right")
    after = page.evaluate("cornerstone.getViewport(strokeaidEditor.viewport('DWI').el).voi")
    assert after["windowWidth"] > before["windowWidth"]
    assert after["windowCenter"] != before["windowCenter"]

    # Brush stroke with label 2 (cardioembolic) on the current slice.
    page.locator(".label-button[data-value='2']").click()
    page.locator(".tool[data-tool='brush']").click()
    page.mouse.move(x - size * 0.15, y)
    page.mouse.down()
    page.mouse.move(x + size * 0.05, y, steps=8)
    page.mouse.up()
    painted = page.evaluate(f"strokeaidEditor.countLabel('DWI', 2, {z0})")
    assert painted > 20
    assert page.locator("#save-status").inner_text() == "Unsaved changes"

    page.locator("#undo").click()
    assert page.evaluate(f"strokeaidEditor.countLabel('DWI', 2, {z0})") == 0
    page.keyboard.press("Control+y")
    assert page.evaluate(f"strokeaidEditor.countLabel('DWI', 2, {z0})") == painted

    # Freehand polygon with label 1 below the stroke fills its inside.
    page.keyboard.press("1")
    page.keyboard.press("p")
    pts = [(0.0, 0.1), (0.15, 0.1), (0.15, 0.25), (0.0, 0.25)]
    page.mouse.move(x + pts[0][0] * size, y + pts[0][1] * size)
    page.mouse.down()
    for px, py in pts[1:]:
        page.mouse.move(x + px * size, y + py * size, steps=4)
    page.mouse.up()
    filled = page.evaluate(f"strokeaidEditor.countLabel('DWI', 1, {z0})")
    assert filled > 30

    # Save (Ctrl+S) and compare the stored voxels with the editor's.
    expected = js_labels(page, "DWI")
    page.keyboard.press("Control+s")
    page.wait_for_function("document.querySelector('#save-status').textContent === 'Saved'")
    annotation = Annotation.objects.get(series=dwi, annotator=neurologist)
    stored = mask_array(revision=annotation.current_revision)
    np.testing.assert_array_equal(stored.reshape(-1), expected)
    assert annotation.current_revision.label_counts == {"1": filled, "2": painted}
    assert not Annotation.objects.filter(series=phantom_series["ADC"]).exists()  # untouched

    # Reload: the same voxels come back.
    page.reload()
    page.wait_for_selector("body[data-editor-ready='1']", timeout=15000)
    np.testing.assert_array_equal(js_labels(page, "DWI"), expected)
    assert page.evaluate(f"strokeaidEditor.countLabel('DWI', 2, {z0})") == painted


def test_stale_save_shows_the_conflict(page, live_server, client, neurologist, phantom_series):
    dwi = phantom_series["DWI"]
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    mask[4, 20:30, 20:30] = 3
    first = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    login(page, live_server, client, neurologist)
    open_editor(page, live_server, dwi.case)
    assert page.evaluate("strokeaidEditor.countLabel('DWI', 3)") == 100

    # Another tab saves meanwhile.
    services.mask_save(user=neurologist, series=dwi, array=mask, if_match=first.annotation.etag)

    x, y, _ = centre(page, "DWI")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 10, y + 10, steps=3)
    page.mouse.up()
    page.locator("#save-button").click()
    page.wait_for_selector("#conflict-dialog:not([hidden])")
    assert Annotation.objects.get(series=dwi).revision_count == 2  # nothing overwritten
    assert "Conflict" in page.locator("#save-status").inner_text()

    page.locator("#conflict-copy").click()
    page.wait_for_function("document.querySelector('#save-status').textContent === 'Saved'")
    annotation = Annotation.objects.get(series=dwi)
    assert annotation.revision_count == 3
    np.testing.assert_array_equal(
        mask_array(revision=annotation.current_revision).reshape(-1), js_labels(page, "DWI")
    )


def test_reviewer_returns_then_approves(
    page, live_server, client, neurologist, reviewer, phantom_series
):
    dwi = phantom_series["DWI"]
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    mask[4, 20:30, 20:30] = 2
    revision = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    services.annotation_submit(user=neurologist, annotation=revision.annotation)

    login(page, live_server, client, reviewer)
    page.add_init_script("window.STROKEAID_AUTOSAVE_MS = 0;")
    page.goto(f"{live_server.url}/annotation/review/")
    row = page.locator("#review-queue tbody tr")
    assert row.count() == 1
    assert "neuro" in row.inner_text()
    row.locator("a", has_text="Review").click()
    page.wait_for_selector("body[data-editor-ready='1']", timeout=15000)
    # The reviewer sees the annotator's voxels, read-only (no drawing tools).
    assert page.evaluate("strokeaidEditor.countLabel('DWI', 2)") == 100
    assert page.locator(".tool[data-tool='brush']").count() == 0

    page.fill("#review-comment", "Extend into the insula on slice 5.")
    page.locator("#return-button").click()
    page.wait_for_function(
        "document.querySelector('#workflow-status').textContent.includes('Returned')"
    )
    annotation = Annotation.objects.get(pk=revision.annotation.pk)
    assert annotation.state == "returned"
    assert annotation.review_comment == "Extend into the insula on slice 5."

    # The annotator sees it first in "My work", resubmits; the reviewer approves.
    services.annotation_submit(user=neurologist, annotation=annotation)
    page.reload()
    page.wait_for_selector("body[data-editor-ready='1']", timeout=15000)
    page.locator("#approve-button").click()
    page.wait_for_function(
        "document.querySelector('#workflow-status').textContent.includes('Approved')"
    )
    annotation.refresh_from_db()
    assert annotation.state == "approved" and annotation.reviewer == reviewer
    assert "Approved" in page.locator("#workflow-list").inner_text()
    # The page tells the truth after the action: nothing left to approve or return, so no
    # second click can earn a 409, and the heading says the masks are approved.
    assert page.locator("#approve-button").is_disabled()
    assert page.locator("#return-button").is_disabled()
    assert page.locator("#workflow-panel h3").inner_text() == "Approved"


def test_prediction_overlay_toggle(page, live_server, client, neurologist, phantom_series):
    """A registered provider's uint8 volume is shown as a second, read-only overlay."""
    from annotation import hooks

    dwi = phantom_series["DWI"]
    predicted = np.zeros(tuple(dwi.shape), np.uint8)
    predicted[4, 8:16, 8:16] = 4
    # Any URL answering the raw uint8 form will do; an imported mask stands in for a model.
    source = services.annotation_import_mask(
        user=neurologist, series=dwi, mask=predicted, annotator=None, is_consensus=True
    )

    def provider(*, series, user):
        return f"/api/annotations/{source.pk}/mask.raw" if series.pk == dwi.pk else None

    hooks.register_prediction_overlay(provider)
    try:
        login(page, live_server, client, neurologist)
        open_editor(page, live_server, dwi.case)
        toggle = page.locator("#prediction-toggle-wrap")
        assert toggle.is_visible()
        page.keyboard.press("t")
        page.wait_for_function(f"strokeaidEditor.series[{dwi.pk}].prediction !== null")
        count = page.evaluate(
            f"Array.from(strokeaidEditor.series[{dwi.pk}].prediction).filter(v => v === 4).length"
        )
        assert count == 64
        # Read-only: the annotator's own mask is untouched by the overlay.
        assert page.evaluate("strokeaidEditor.countLabel('DWI', 4)") == 0
    finally:
        hooks._providers.remove(provider)
